"""The simulated arm's env (``robot.backend=sim``) from a validated config."""

from __future__ import annotations

from omegaconf import DictConfig

from robot_rl.config import ConfigError
from robot_rl.env.factory import robot_env
from robot_rl.env.robot_env import RobotEnv
from robot_rl.safety.limits import load_limits
from robot_rl.sim.backend import SimBackend
from robot_rl.sim.simulation import ARM_JOINTS
from robot_rl.sim.tasks import SIM_TASKS, PickCubeTask, Region


def sim_env(cfg: DictConfig, render_mode: str | None = None, with_cameras: bool = True) -> RobotEnv:
    """The MuJoCo arm behind the safety chain, doing ``task.name``; ``with_cameras=False``
    leaves images out (state-only, no rendering)."""
    robot, task_cfg = cfg.robot, cfg.task
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
        _dress_scene(backend, cfg)
        return robot_env(cfg, backend, task, with_cameras, render_mode)
    except ValueError as e:
        backend.close()
        raise ConfigError(str(e)) from None


def _dress_scene(backend: SimBackend, cfg: DictConfig) -> None:
    """The configured camera offsets and cube colour (views and colours a model was not trained on)."""
    for name, offset in cfg.robot.camera_offsets.items():
        try:
            backend.sim.move_camera(name, list(offset.shift), list(offset.turn))
        except ValueError as e:
            raise ValueError(f"invalid value for 'robot.camera_offsets.{name}': {e}") from None
    if cfg.task.cube_rgba is not None:
        backend.sim.set_cube_rgba(list(cfg.task.cube_rgba))
