"""Critics in training. An inline critic takes the env's place as the reward: the env's own
success and reward are hidden from learning (kept in ``info`` for reporting), the critic's
composed reward and its success decision drive the episode. A slow critic relabels whole
episodes in the learner instead (:mod:`robot_rl.critics.relabel`)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from omegaconf import DictConfig

from robot_rl.config import ConfigError
from robot_rl.critics.base import Critic
from robot_rl.critics.composer import RewardComposer, RewardConfig
from robot_rl.critics.factory import SLOW_CRITICS
from robot_rl.critics.relabel import Relabeler


class CriticReward(gym.Wrapper):
    """Scores each new observation's camera frames with ``critic`` and pays the composed reward;
    the episode terminates when the critic declares success (the env's own success no longer
    ends it). ``info`` keeps the env's ``reward`` as ``env_reward`` and adds ``critic_progress``
    and ``critic_success``."""

    def __init__(self, env: gym.Env, critic: Critic, task: str, config: RewardConfig):
        super().__init__(env)
        if not critic.inline:
            raise ValueError(f"critic {critic.name!r} is too slow to run in the actor; use the relabeler")
        self.critic, self.task = critic, task
        self.composer = RewardComposer(config)
        env.unwrapped.terminate_on_success = False  # the critic decides when the task is done

    def _judge(self, obs: dict[str, np.ndarray]) -> tuple[float, float, bool]:
        frames = {name: obs[name][None] for name in self.env.unwrapped.images}
        out = self.critic.score(frames, self.task)
        return float(out.progress[0]), float(out.success_prob[0]), bool(out.valid[0])

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        progress, _, valid = self._judge(obs)
        self.composer.reset(progress, valid)
        return obs, info

    def step(self, action: np.ndarray):
        obs, env_reward, _, truncated, info = self.env.step(action)
        progress, success, valid = self._judge(obs)
        reward, terminated = self.composer.step(progress, success, valid)
        info.update(env_reward=env_reward, critic_progress=progress, critic_success=success)
        return obs, reward, terminated, truncated and not terminated, info


def reward_config(cfg: DictConfig) -> RewardConfig:
    c = cfg.critic
    return RewardConfig(c.success_reward, c.shaping, cfg.agent.discount, c.threshold, c.confirm)


def with_critic(env: gym.Env, cfg: DictConfig) -> gym.Env:
    """``env`` as ``cfg.critic`` says it is rewarded: by itself (``env``), or by an inline critic.
    A slow critic leaves the env as it is, unbuilt: the learner's relabeler rewards its episodes."""
    if cfg.critic.name == "env" or cfg.critic.name in SLOW_CRITICS:
        return env
    from robot_rl.critics.factory import make_critic

    try:
        return CriticReward(env, make_critic(cfg), cfg.task.name, reward_config(cfg))
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"invalid value for 'critic': {e}") from None


def relabeler_for(cfg: DictConfig) -> Relabeler | None:
    """The learner's relabeler when ``cfg.critic`` is too slow for the actor, else None."""
    if cfg.critic.name not in SLOW_CRITICS:
        return None
    from robot_rl.critics.factory import make_critic

    return Relabeler(make_critic(cfg), cfg.task.name, list(cfg.cameras), reward_config(cfg))
