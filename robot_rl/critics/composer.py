"""From critic outputs to RL rewards without changing the optimal policy.

r = r_success + λ (γ Φ(s′) − Φ(s)), with Φ the critic's progress: potential-based shaping
(Ng et al., 1999) adds a term whose sum along any path telescopes, so the optimal policy
under the shaped reward is the optimal policy under the success reward alone. Success is
declared after ``confirm`` consecutive frames above the threshold, which keeps a single
false positive from ending an episode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rl.critics.base import CriticOutput


@dataclass(frozen=True)
class RewardConfig:
    success_reward: float = 1.0
    shaping: float = 1.0  # λ; 0 gives the sparse success reward alone
    discount: float = 0.97  # γ: must be the agent's, or the shaping is no longer policy-invariant
    threshold: float = 0.5  # success_prob from which a frame counts as done
    confirm: int = 2  # consecutive done frames that declare success


@dataclass(frozen=True)
class ComposedRewards:
    rewards: np.ndarray  # (T,) for the T steps between T + 1 frames
    terminated: np.ndarray  # (T,) bool: success declared at this step (and the episode ends there)


def compose_rewards(output: CriticOutput, config: RewardConfig = RewardConfig()) -> ComposedRewards:
    """Rewards for an episode of T + 1 frames (the first observation, then one per step).

    Invalid frames keep the last valid potential (0 before any), so a critic that could not
    judge a frame neither pays nor charges for it. Steps after the declared success are
    cut: the episode ends there.
    """
    n = len(output.progress) - 1
    if n < 1:
        raise ValueError("an episode needs at least two frames (a first observation and one step)")
    potential = np.zeros(n + 1)
    last = 0.0
    for i, (p, ok) in enumerate(zip(output.progress, output.valid, strict=True)):
        last = float(np.clip(p, 0.0, 1.0)) if ok else last
        potential[i] = last
    done = (output.success_prob[1:] >= config.threshold) & output.valid[1:]
    run, terminated = 0, np.zeros(n, dtype=bool)
    for t in range(n):
        run = run + 1 if done[t] else 0
        if run >= config.confirm:
            terminated[t] = True
            break
    end = int(np.argmax(terminated)) + 1 if terminated.any() else n
    # a terminal state has potential 0 (Ng et al.): the shaping cannot pay for ending
    next_potential = potential[1:end + 1].copy()
    if terminated.any():
        next_potential[-1] = 0.0
    rewards = config.shaping * (config.discount * next_potential - potential[:end])
    rewards[terminated[:end]] += config.success_reward
    return ComposedRewards(rewards.astype(np.float32), terminated[:end])
