"""Reward models in training. An inline reward model takes the env's place as the reward: the env's own
success and reward are hidden from learning (kept in ``info`` for reporting), the reward model's
composed reward and its success decision drive the episode. A slow reward model relabels whole
episodes in the learner instead (:mod:`robot_rl.rewards.relabel`)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from omegaconf import DictConfig

from robot_rl.config import ConfigError
from robot_rl.rewards.base import RewardModel
from robot_rl.rewards.composer import RewardComposer, RewardConfig
from robot_rl.rewards.factory import SLOW_REWARD_MODELS
from robot_rl.rewards.relabel import Relabeler


class ModelReward(gym.Wrapper):
    """Scores each new observation's camera frames with ``reward model`` and pays the composed reward;
    the episode terminates when the reward model declares success (the env's own success no longer
    ends it). ``info`` keeps the env's ``reward`` as ``env_reward`` and adds ``reward_progress``
    and ``reward_success``."""

    def __init__(self, env: gym.Env, reward_model: RewardModel, task: str, config: RewardConfig):
        super().__init__(env)
        if not reward_model.inline:
            raise ValueError(f"reward model {reward_model.name!r} is too slow to run in the actor; use the relabeler")
        self.reward_model, self.task = reward_model, task
        self.composer = RewardComposer(config)
        env.unwrapped.terminate_on_success = False  # the reward model decides when the task is done

    def _judge(self, obs: dict[str, np.ndarray]) -> tuple[float, float, bool]:
        frames = {name: obs[name][None] for name in self.env.unwrapped.images}
        out = self.reward_model.score(frames, self.task)
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
        info.update(env_reward=env_reward, reward_progress=progress, reward_success=success)
        return obs, reward, terminated, truncated and not terminated, info


def reward_config(cfg: DictConfig) -> RewardConfig:
    c = cfg.reward_model
    return RewardConfig(c.success_reward, c.shaping, cfg.agent.discount, c.threshold, c.confirm)


def with_reward_model(env: gym.Env, cfg: DictConfig) -> gym.Env:
    """``env`` as ``cfg.reward_model`` says it is rewarded: by itself (``env``), or by an inline reward model.
    A slow reward model leaves the env as it is, unbuilt: the learner's relabeler rewards its episodes."""
    if cfg.reward_model.name == "env" or cfg.reward_model.name in SLOW_REWARD_MODELS:
        return env
    from robot_rl.rewards.factory import make_reward_model

    try:
        return ModelReward(env, make_reward_model(cfg), cfg.task.name, reward_config(cfg))
    except ValueError as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"invalid value for 'reward_model': {e}") from None


def relabeler_for(cfg: DictConfig) -> Relabeler | None:
    """The learner's relabeler when ``cfg.reward_model`` is too slow for the actor, else None."""
    if cfg.reward_model.name not in SLOW_REWARD_MODELS:
        return None
    from robot_rl.rewards.factory import make_reward_model

    return Relabeler(make_reward_model(cfg), cfg.task.name, list(cfg.cameras), reward_config(cfg))
