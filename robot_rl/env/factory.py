"""Build a :class:`RobotEnv` from a validated config."""

from __future__ import annotations

import gymnasium as gym
from omegaconf import DictConfig

from robot_rl.config import ConfigError
from robot_rl.env.backend import RobotBackend
from robot_rl.env.image import CropResize
from robot_rl.env.robot_env import ActionSpec, RobotEnv, observation_space
from robot_rl.env.task import LabeledTask, Task


def make_env(cfg: DictConfig, render_mode: str | None = None, with_cameras: bool = True,
             backend: RobotBackend | None = None) -> RobotEnv:
    """The env ``cfg`` describes; ``with_cameras=False`` leaves images out (state-only, no rendering).

    ``robot.backend=ros``: ``backend`` is the robot's topics (actor_node builds it), and the
    task is judged by the operator's labels (:class:`LabeledTask`).
    """
    if cfg.robot.backend == "ros":
        return _ros_env(cfg, backend, render_mode)
    if backend is not None:
        raise ValueError("make_env builds the simulated robot's backend itself; a backend is passed only for "
                         "robot.backend=ros")
    robot, task_cfg = cfg.robot, cfg.task
    from robot_rl.env.sim_backend import SimBackend
    from robot_rl.safety.limits import load_limits
    from robot_rl.sim.simulation import ARM_JOINTS
    from robot_rl.sim.tasks import SIM_TASKS, PickCubeTask, Region

    try:
        task_cls = SIM_TASKS.get(task_cfg.name)
    except KeyError as e:
        raise ConfigError(f"invalid value for 'task.name': {e.args[0]}") from None
    try:  # the robot's limits, with the configured workspace box inside them
        limits = load_limits(robot.safety, ARM_JOINTS).narrowed(list(robot.workspace.low), list(robot.workspace.high))
    except ConfigError as e:
        raise ConfigError(f"invalid value for 'robot.safety': {e}") from None
    backend = SimBackend(
        camera_sizes={name: tuple(cam.resolution) for name, cam in cfg.cameras.items() if with_cameras},
        home_ee_pos=list(robot.home_ee_pos),
        start_noise=list(robot.start_noise),
        physics_dt=robot.physics_dt,
        limits=limits,
        control_period=1.0 / robot.control_hz,
    )
    try:
        regions = {k: Region(tuple(task_cfg[k].low), tuple(task_cfg[k].high)) for k in ("cube_region", "target_region")}
        extra = {"lift_height": task_cfg.lift_height} if issubclass(task_cls, PickCubeTask) else {}
        task = task_cls(backend.sim, success_radius=task_cfg.success_radius, **regions, **extra)
        return _robot_env(cfg, backend, task, with_cameras, render_mode)
    except ValueError as e:
        backend.close()
        raise ConfigError(str(e)) from None


def _ros_env(cfg: DictConfig, backend: RobotBackend | None, render_mode: str | None) -> RobotEnv:
    if backend is None:
        raise ConfigError("invalid value for 'robot.backend': ros: the robot's topics are subscribed by actor_node "
                          "(ros2 launch robot_rl hil_rl.launch.py); use robot=sim here")
    try:
        return _robot_env(cfg, backend, LabeledTask(cfg.task.name), True, render_mode)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _robot_env(cfg: DictConfig, backend: RobotBackend, task: Task, with_cameras: bool,
               render_mode: str | None) -> RobotEnv:
    t = cfg.task
    return RobotEnv(backend, task, ActionSpec(**t.action), image_transforms(cfg, with_cameras),
                    proprio=list(cfg.robot.proprio), max_steps=t.max_steps, control_hz=cfg.robot.control_hz,
                    reward=t.reward, terminate_on_success=t.terminate_on_success, render_mode=render_mode)


def image_transforms(cfg: DictConfig, with_cameras: bool = True) -> dict[str, CropResize]:
    """What each configured camera's frames go through before the policy sees them."""
    if not with_cameras:
        return {}
    return {name: CropResize(tuple(cam.size), None if cam.crop is None else tuple(cam.crop))
            for name, cam in cfg.cameras.items()}


def make_task_env(task: str, overrides: tuple[str, ...] = (), render_mode: str | None = None,
                  with_cameras: bool = True) -> RobotEnv:
    """Entry point of the gymnasium ids (``gymnasium.make("robot_rl/PickCube-v0")``)."""
    from robot_rl.config import load_config

    return make_env(load_config([f"task={task}", *overrides]), render_mode=render_mode, with_cameras=with_cameras)


def spaces_from_config(cfg: DictConfig) -> tuple[gym.spaces.Dict, int]:
    """(observation space, action dimension) of the env ``cfg`` describes, without building it:
    what a learner on another machine needs to know of the robot."""
    try:
        obs = observation_space({n: tuple(c.size) for n, c in cfg.cameras.items()}, list(cfg.robot.proprio),
                                cfg.robot.dof)
        return obs, ActionSpec(**cfg.task.action).dim
    except ValueError as e:
        raise ConfigError(str(e)) from None
