"""A :class:`RobotEnv` from a validated config and a backend someone built."""

from __future__ import annotations

import gymnasium as gym
from omegaconf import DictConfig

from robot_rl.config import ConfigError
from robot_rl.env.backend import RobotBackend
from robot_rl.env.image import CropResize
from robot_rl.env.robot_env import ActionSpec, RobotEnv, observation_space
from robot_rl.env.task import LabeledTask, Task


def robot_env(cfg: DictConfig, backend: RobotBackend, task: Task, with_cameras: bool = True,
              render_mode: str | None = None) -> RobotEnv:
    """The env of ``backend`` doing ``task``, with the action, cameras and episode ``cfg`` sets."""
    t = cfg.task
    return RobotEnv(backend, task, ActionSpec(**t.action), image_transforms(cfg, with_cameras),
                    proprio=list(cfg.robot.proprio), max_steps=t.max_steps, control_hz=cfg.robot.control_hz,
                    reward=t.reward, terminate_on_success=t.terminate_on_success, render_mode=render_mode)


def labeled_env(cfg: DictConfig, backend: RobotBackend, render_mode: str | None = None) -> RobotEnv:
    """A real robot's env: the task is judged by the operator's labels (:class:`LabeledTask`)."""
    try:
        return robot_env(cfg, backend, LabeledTask(cfg.task.name), True, render_mode)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def image_transforms(cfg: DictConfig, with_cameras: bool = True) -> dict[str, CropResize]:
    """What each configured camera's frames go through before the policy sees them."""
    if not with_cameras:
        return {}
    return {name: CropResize(tuple(cam.size), None if cam.crop is None else tuple(cam.crop))
            for name, cam in cfg.cameras.items()}


def spaces_from_config(cfg: DictConfig) -> tuple[gym.spaces.Dict, int]:
    """(observation space, action dimension) of the env ``cfg`` describes, without building it:
    what a learner on another machine needs to know of the robot."""
    try:
        obs = observation_space({n: tuple(c.size) for n, c in cfg.cameras.items()}, list(cfg.robot.proprio),
                                cfg.robot.dof)
        return obs, ActionSpec(**cfg.task.action).dim
    except ValueError as e:
        raise ConfigError(str(e)) from None
