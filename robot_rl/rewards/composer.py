"""From reward model outputs to RL rewards without changing the optimal policy.

r = r_success + λ (γ Φ(s′) − Φ(s)), with Φ the reward model's progress: potential-based shaping
(Ng et al., 1999) adds a term whose sum along any path telescopes, so the optimal policy
under the shaped reward is the optimal policy under the success reward alone. Success is
declared after ``confirm`` consecutive frames above the threshold, which keeps a single
false positive from ending an episode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_rl.rewards.base import RewardOutput


@dataclass(frozen=True)
class RewardConfig:
    success_reward: float = 1.0
    shaping: float = 1.0  # λ; 0 gives the sparse success reward alone
    discount: float = 0.97  # γ: must be the agent's, or the shaping is no longer policy-invariant
    threshold: float = 0.5  # success_prob from which a frame counts as done
    confirm: int = 2  # consecutive done frames that declare success


class RewardComposer:
    """The composer step by step, as an inline reward model feeds it: :meth:`reset` with the first
    frame's judgement, then :meth:`step` with each new frame's."""

    def __init__(self, config: RewardConfig = RewardConfig()):
        self.config = config
        self.potential, self.run = 0.0, 0

    def reset(self, progress: float, valid: bool = True) -> None:
        self.potential = float(np.clip(progress, 0.0, 1.0)) if valid else 0.0
        self.run = 0

    def step(self, progress: float, success_prob: float, valid: bool = True,
             succeeded: bool = False) -> tuple[float, bool]:
        """(reward, terminated) of the step that led to this frame. A frame the reward model could
        not judge keeps the last potential and does not count towards success; ``succeeded``:
        the episode is known to have ended in success here (the sim, an operator's label)."""
        c = self.config
        potential = float(np.clip(progress, 0.0, 1.0)) if valid else self.potential
        self.run = self.run + 1 if valid and success_prob >= c.threshold else 0
        terminated = succeeded or self.run >= c.confirm
        # a terminal state has potential 0 (Ng et al.): the shaping cannot pay for ending
        reward = c.shaping * (c.discount * (0.0 if terminated else potential) - self.potential)
        self.potential = potential
        return reward + (c.success_reward if terminated else 0.0), terminated


@dataclass(frozen=True)
class ComposedRewards:
    rewards: np.ndarray  # (T,) for the T steps between T + 1 frames, up to the declared success
    terminated: np.ndarray  # (T,) bool: success declared at this step (and the episode ends there)


def compose_rewards(output: RewardOutput, config: RewardConfig = RewardConfig(),
                    succeeded: np.ndarray | None = None) -> ComposedRewards:
    """Rewards for an episode of T + 1 frames (the first observation, then one per step), cut
    at the step where success is declared: the episode ends there. ``succeeded`` (T,) marks
    steps known to end in success, which count as declared whatever the reward model says."""
    if len(output.progress) < 2:
        raise ValueError("an episode needs at least two frames (a first observation and one step)")
    composer = RewardComposer(config)
    composer.reset(output.progress[0], bool(output.valid[0]))
    rewards, terminated = [], []
    known = np.zeros(len(output.progress) - 1, bool) if succeeded is None else np.asarray(succeeded, bool)
    for p, s, ok, won in zip(output.progress[1:], output.success_prob[1:], output.valid[1:], known, strict=True):
        reward, done = composer.step(float(p), float(s), bool(ok), bool(won))
        rewards.append(reward)
        terminated.append(done)
        if done:
            break
    return ComposedRewards(np.array(rewards, np.float32), np.array(terminated, bool))
