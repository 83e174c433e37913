"""The config tree's robot side: robot, cameras, task, policy, teleop, console, logging."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial

from omegaconf import DictConfig, OmegaConf

from robot_rl.config import ConfigError, require
from robot_rl.safety.limits import load_limits


@dataclass
class Box:
    low: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    high: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])


@dataclass
class CameraOffset:
    """A simulated camera moved from where the scene puts it (``ArmSimulation.move_camera``)."""

    shift: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # m, in the frame it is fixed to
    turn: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # pan, tilt, roll, degrees


@dataclass
class RobotConfig:
    backend: str = "sim"  # sim (the MuJoCo arm) | ros (topics of camera_node and arm_node, in actor_node)
    dof: int = 7
    control_hz: float = 10.0
    physics_dt: float = 0.002
    home_ee_pos: list[float] = field(default_factory=lambda: [0.45, 0.0, 0.2])
    home_ee_quat: list[float] = field(default_factory=lambda: [0.0, 1.0, 0.0, 0.0])  # w, x, y, z (ros backend)
    start_noise: list[float] = field(default_factory=lambda: [0.04, 0.04, 0.03])
    workspace: Box = field(default_factory=Box)
    safety: str = "sim_panda"  # safety limits: a file in config/safety/ (without .yaml) or a path
    proprio: list[str] = field(default_factory=lambda: ["ee_pos", "ee_rot6d", "gripper"])
    camera_offsets: dict[str, CameraOffset] = field(default_factory=dict)  # sim only: camera → its offset


@dataclass
class CameraConfig:
    resolution: list[int] = field(default_factory=lambda: [128, 128])
    crop: list[int] | None = None
    size: list[int] = field(default_factory=lambda: [128, 128])


@dataclass
class ActionConfig:
    pos_step: float = 0.02
    rot_step: float = 0.1
    rotation: bool = False
    gripper: bool = True
    gripper_mode: str = "absolute"


@dataclass
class TaskConfig:
    name: str = "pick_cube"
    max_steps: int = 100
    reward: str = "sparse"
    terminate_on_success: bool = True
    success_radius: float = 0.03
    lift_height: float = 0.08
    action: ActionConfig = field(default_factory=ActionConfig)
    cube_region: Box = field(default_factory=Box)
    target_region: Box = field(default_factory=Box)
    cube_rgba: list[float] | None = None  # sim only: the cube's colour [r, g, b, a]; None: the scene's red


@dataclass
class PolicyConfig:
    name: str = "expert"
    noise: float = 0.0


@dataclass
class LoggingConfig:
    progress_bar: bool = True
    wandb: str = "auto"
    project: str = "robot_rl"


DEVICES = ("none", "keyboard", "spacemouse", "gamepad", "sim_expert", "ros")


@dataclass
class TeleopConfig:
    device: str = "none"  # none | keyboard | spacemouse | gamepad | sim_expert | ros (teleop_node's topics)
    frame: str = "base"  # base (operator's frame, turned by operator_yaw) | ee (tool frame)
    operator_yaw: float = 0.0
    deadzone: float = 0.05
    end_on_label: bool = True
    # the simulated operator (device=sim_expert)
    stuck_steps: int = 8
    guide_steps: int = 10
    budget_start: float = 0.8
    budget_end: float = 0.05
    decay_episodes: int = 60


@dataclass
class ConsoleConfig:
    enabled: bool = False
    host: str = "127.0.0.1"  # 0.0.0.0: reachable from the lab network (the same key and cookie rules)
    port: int = 8080
    token: str | None = None  # the console's own key (>= 16 chars); None: $ROBOT_RL_CONSOLE_TOKEN, or a fresh one


@dataclass
class Config:
    robot: RobotConfig = field(default_factory=RobotConfig)
    cameras: dict[str, CameraConfig] = field(default_factory=dict)
    task: TaskConfig = field(default_factory=TaskConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    teleop: TeleopConfig = field(default_factory=TeleopConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    seed: int = 0
    episodes: int = 10
    video: str | None = None
    record: str | None = None
    run_dir: str | None = None


def validate_robot(cfg: DictConfig) -> None:
    """Checks that types alone cannot express: the robot, cameras, task, teleop and console."""
    need = partial(require, cfg)
    need(cfg.episodes > 0, "episodes", "must be > 0")
    need(cfg.robot.backend in ("sim", "ros"), "robot.backend", "must be sim or ros")
    need(cfg.robot.control_hz > 0, "robot.control_hz", "must be > 0")
    need(cfg.robot.physics_dt > 0, "robot.physics_dt", "must be > 0")
    _validate_safety(cfg)
    need(len(cfg.robot.home_ee_pos) == 3, "robot.home_ee_pos", "must be [x, y, z]")
    need(len(cfg.robot.home_ee_quat) == 4 and sum(v * v for v in cfg.robot.home_ee_quat) > 0.5,
         "robot.home_ee_quat", "must be a unit quaternion [w, x, y, z]")
    for box in ("robot.workspace", "task.cube_region", "task.target_region"):
        low, high = OmegaConf.select(cfg, f"{box}.low"), OmegaConf.select(cfg, f"{box}.high")
        need(len(low) == 3 and len(high) == 3, box, "low and high must be [x, y, z]")
        need(all(lo <= hi for lo, hi in zip(low, high, strict=True)), box, "low must be <= high")
    need(len(cfg.cameras) > 0, "cameras", "at least one camera is needed")
    for name, cam in cfg.cameras.items():
        need(len(cam.size) == 2 and min(cam.size) > 0, f"cameras.{name}.size", "must be [height, width] > 0")
        need(len(cam.resolution) == 2 and min(cam.resolution) > 0, f"cameras.{name}.resolution",
             "must be [height, width] > 0")
        need(cam.crop is None or len(cam.crop) == 4, f"cameras.{name}.crop", "must be [x, y, width, height]")
    _validate_sim_scene(cfg)
    need(cfg.task.max_steps > 0, "task.max_steps", "must be > 0")
    need(cfg.task.reward in ("sparse", "dense"), "task.reward", "must be 'sparse' or 'dense'")
    need(cfg.task.action.pos_step > 0, "task.action.pos_step", "must be > 0")
    need(cfg.task.action.gripper_mode in ("absolute", "toggle"), "task.action.gripper_mode",
         "must be 'absolute' or 'toggle'")
    need(cfg.task.success_radius > 0, "task.success_radius", "must be > 0")
    need(cfg.policy.noise >= 0, "policy.noise", "must be >= 0")
    need(cfg.teleop.device in DEVICES, "teleop.device", f"must be one of {', '.join(DEVICES)}")
    need(cfg.teleop.frame in ("base", "ee"), "teleop.frame", "must be base or ee")
    need(0 <= cfg.teleop.deadzone < 1, "teleop.deadzone", "must be in [0, 1)")
    need(0 < cfg.console.port < 65536 or cfg.console.port == 0, "console.port", "must be a TCP port")


def _validate_sim_scene(cfg: DictConfig) -> None:
    """The simulated scene's camera offsets and cube colour: well formed, and only on the sim."""
    need = partial(require, cfg)
    sim = cfg.robot.backend == "sim"
    for name, offset in cfg.robot.camera_offsets.items():
        key = f"robot.camera_offsets.{name}"
        need(len(offset.shift) == 3 and all(math.isfinite(v) for v in offset.shift), f"{key}.shift",
             "must be [x, y, z] in metres")
        need(len(offset.turn) == 3 and all(-180 <= v <= 180 for v in offset.turn), f"{key}.turn",
             "must be [pan, tilt, roll] in degrees, each in [-180, 180]")
        need(sim or not any([*offset.shift, *offset.turn]), f"{key}",
             "only the simulated rig's cameras can be moved (robot.backend=sim)")
    rgba = cfg.task.cube_rgba
    need(rgba is None or (len(rgba) == 4 and all(0 <= v <= 1 for v in rgba) and rgba[3] > 0), "task.cube_rgba",
         "must be [r, g, b, a], each in [0, 1] and a > 0")
    need(sim or rgba is None, "task.cube_rgba", "only the simulated cube can be recoloured (robot.backend=sim)")


def _validate_safety(cfg: DictConfig) -> None:
    """Load the robot's safety limits now, so a bad limits file stops the start, in one line."""
    try:
        limits = load_limits(cfg.robot.safety)
    except ConfigError as e:
        raise ConfigError(f"invalid value for 'robot.safety': {e}") from None
    if len(limits.joint_names) != cfg.robot.dof:
        raise ConfigError(f"invalid value for 'robot.safety': {cfg.robot.safety} lists {len(limits.joint_names)} "
                          f"joints but robot.dof is {cfg.robot.dof}")
