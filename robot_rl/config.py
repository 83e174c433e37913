"""Loading the hydra config tree, validated against a typed schema.

Hydra composes ``config/`` with the command line's ``key=value`` overrides; the result is
merged into the dataclass schema below, so a wrong key or a value of the wrong type fails
before anything starts, with one line that names the key.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from robot_rl.rl.settings import AgentConfig, LearnerConfig, OfflineConfig


class ConfigError(ValueError):
    """A config problem the user can fix; its message is one line."""


@dataclass
class Box:
    low: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    high: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])


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


@dataclass
class TLSSection:
    cert: str | None = None
    key: str | None = None
    ca: str | None = None


@dataclass
class LearnerSection(LearnerConfig):
    """The learner's settings plus where it runs and how actors reach it."""

    device: str = "auto"
    address: str = "127.0.0.1:50051"
    token: str | None = None
    tls: TLSSection = field(default_factory=TLSSection)


@dataclass
class TrainSection:
    env_steps: int = 5000
    processes: int = 2
    random_steps: int = 500
    demos: int = 0
    eval_every: int = 1000
    eval_episodes: int = 10
    rate_hz: float | None = None
    weights_every_steps: int = 0
    threads: int | None = None
    stop_at: float | None = None
    actor_id: str | None = None  # unique in the run; None: <host>-<pid> for robot-rl actor, actor-0 under train
    restarts: int = 5  # train: restarts of a dead learner (or actor) before train gives up
    backlog_mb: int = 2048  # steps held in RAM for an unreachable learner; beyond, resent from the actor's store


@dataclass
class CriticSection:
    """What rewards learning: the env itself, or a trained critic (robot_rl/critics)."""

    name: str = "env"  # env | learned_progress | classifier
    path: str | None = None  # the trained critic's file (robot-rl critic train)
    shaping: float = 1.0  # λ of the potential-based progress shaping; 0: success reward alone
    success_reward: float = 1.0
    threshold: float = 0.5  # success_prob from which a frame counts as done
    confirm: int = 2  # consecutive done frames that declare success and end the episode
    success_frames: int = 3  # critic train, classifier: the last frames of a successful episode are positives
    epochs: int = 30  # critic train
    # embedding: a CLIP/SigLIP model (VLM-RMs)
    model_path: str | None = None  # a local folder, or a name in the local model cache
    goal: str = "{task}, done"  # the goal text ({task}: the task's name, underscores as spaces)
    baseline: str = "a robot arm"
    alpha: float = 0.5  # 1: only the baseline→goal direction counts; 0: the whole embedding
    success_threshold: float = 0.9  # on R = 1 − ½‖(x − g)P‖²
    # vlm_progress: an OpenAI-compatible chat endpoint, or a local transformers model
    local_model: str | None = None  # a folder, or a name in the local model cache (instead of base_url)
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None  # the key is read from this environment variable
    allow_insecure: bool = False  # send the API key over plain http:// to a host other than this machine
    camera: str | None = None  # null: the first camera
    max_frames: int = 16
    timeout_s: float = 30.0
    retries: int = 3
    on_parse_failure: str = "invalid"  # invalid | retry
    cache_dir: str | None = None


@dataclass
class TrainConfig(Config):
    checkpoint: str | None = None  # robot-rl eval: the learner checkpoint to evaluate
    agent: AgentConfig = field(default_factory=AgentConfig)
    learner: LearnerSection = field(default_factory=LearnerSection)
    train: TrainSection = field(default_factory=TrainSection)
    critic: CriticSection = field(default_factory=CriticSection)
    offline: OfflineConfig = field(default_factory=OfflineConfig)
    data: str | None = None  # offline, train, critic train / eval: EpisodeStore(s), comma-separated
    init: str | None = None  # train: start from this checkpoint (e.g. robot-rl offline's)
    out: str | None = None  # critic train: where the trained critic goes


@dataclass
class BoardSection:
    kind: str = "charuco"  # charuco | checkerboard
    squares: list[int] = field(default_factory=lambda: [7, 5])  # columns, rows
    square: float = 0.04  # m
    marker: float = 0.03  # m (charuco)
    dictionary: str = "DICT_5X5_100"


@dataclass
class CalibrateSection:
    rig: str = "default"
    dir: str = "rigs"
    camera: str = "wrist"
    source: str = "sim"
    images: str | None = None
    poses: str | None = None
    intrinsics: str | None = None
    setup: str = "eye_in_hand"
    method: str = "park"
    views: int = 20
    tilt_deg: float = 18.0
    margin: float = 0.0
    base_limits: str = "sim_panda"
    board: BoardSection = field(default_factory=BoardSection)


@dataclass
class CalibrateConfig(Config):
    calibrate: CalibrateSection = field(default_factory=CalibrateSection)


SCHEMAS = {"config": Config, "train": TrainConfig, "calibrate": CalibrateConfig}


def config_dir() -> Path:
    """The config tree: $ROBOT_RL_CONFIG_DIR, the source checkout, or share/robot_rl/config."""
    here = Path(__file__).resolve()
    candidates = [
        Path(os.environ["ROBOT_RL_CONFIG_DIR"]) if "ROBOT_RL_CONFIG_DIR" in os.environ else None,
        here.parents[1] / "config",  # source checkout, editable install, setup.py develop
        Path(sys.prefix) / "share" / "robot_rl" / "config",  # pip install into an environment
    ]
    if len(here.parents) > 4:  # colcon: <prefix>/lib/pythonX.Y/site-packages/robot_rl/config.py
        candidates.append(here.parents[4] / "share" / "robot_rl" / "config")
    for path in candidates:
        if path is not None and (path / "config.yaml").is_file():
            return path
    searched = ", ".join(str(p) for p in candidates if p is not None)
    raise ConfigError(f"cannot find the robot_rl config tree (config.yaml); looked in {searched}")


def load_config(overrides: list[str] | tuple[str, ...] = (), name: str = "config") -> DictConfig:
    """Compose ``<name>.yaml`` with ``overrides`` and validate it; raises :class:`ConfigError`."""
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            raw = compose(config_name=name, overrides=list(overrides))
    except HydraException as e:
        raise ConfigError(_hydra_message(e)) from None
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(SCHEMAS[name]), raw)
    except OmegaConfBaseException as e:
        raise ConfigError(f"invalid value for '{e.full_key}': {str(e.msg).splitlines()[0]}") from None
    validate(cfg)
    return cfg


def validate(cfg: DictConfig) -> None:
    """Checks that types alone cannot express."""

    def need(ok: bool, key: str, why: str) -> None:
        if not ok:
            raise ConfigError(f"invalid value for '{key}': {why} (got {OmegaConf.select(cfg, key)})")

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
    if "train" in cfg:
        validate_training(cfg)


def _validate_safety(cfg: DictConfig) -> None:
    """Load the robot's safety limits now, so a bad limits file stops the start, in one line."""
    from robot_rl.safety.limits import load_limits

    try:
        limits = load_limits(cfg.robot.safety)
    except ConfigError as e:
        raise ConfigError(f"invalid value for 'robot.safety': {e}") from None
    if len(limits.joint_names) != cfg.robot.dof:
        raise ConfigError(f"invalid value for 'robot.safety': {cfg.robot.safety} lists {len(limits.joint_names)} "
                          f"joints but robot.dof is {cfg.robot.dof}")


def validate_training(cfg: DictConfig) -> None:
    def need(ok: bool, key: str, why: str) -> None:
        if not ok:
            raise ConfigError(f"invalid value for '{key}': {why} (got {OmegaConf.select(cfg, key)})")

    need(cfg.agent.encoder in ("patchify", "drq", "resnet"), "agent.encoder", "must be patchify, drq or resnet")
    need(cfg.agent.encoder != "resnet" or cfg.agent.resnet_path is not None, "agent.resnet_path",
         "encoder=resnet needs a local model folder")
    need(cfg.agent.num_critics >= 1, "agent.num_critics", "must be >= 1")
    need(not cfg.agent.gripper_critic or (cfg.task.action.gripper and cfg.task.action.gripper_mode == "toggle"),
         "agent.gripper_critic", "needs task.action.gripper=true and task.action.gripper_mode=toggle")
    need(0 < cfg.agent.discount <= 1, "agent.discount", "must be in (0, 1]")
    need(0 < cfg.agent.tau <= 1, "agent.tau", "must be in (0, 1]")
    need(cfg.agent.init_temperature > 0, "agent.init_temperature", "must be > 0")
    need(cfg.agent.augmentation_pad >= 0, "agent.augmentation_pad", "must be >= 0")
    need(cfg.critic.name in ("env", "learned_progress", "classifier", "embedding", "vlm_progress"), "critic.name",
         "must be env, learned_progress, classifier, embedding or vlm_progress")
    need(cfg.critic.confirm >= 1, "critic.confirm", "must be >= 1")
    need(cfg.critic.success_frames >= 1, "critic.success_frames", "must be >= 1")
    need(0 < cfg.critic.threshold < 1, "critic.threshold", "must be in (0, 1)")
    need(cfg.learner.batch_size >= 1, "learner.batch_size", "must be >= 1")
    need(0 <= cfg.learner.demo_ratio <= 1, "learner.demo_ratio", "must be in [0, 1]")
    need(cfg.learner.utd_ratio > 0, "learner.utd_ratio", "must be > 0")
    need(cfg.learner.device == "auto" or cfg.learner.device.split(":")[0] in ("cpu", "cuda"), "learner.device",
         "must be auto, cpu or cuda[:N]")
    need(":" in cfg.learner.address, "learner.address", "must be host:port")
    need(cfg.train.env_steps > 0, "train.env_steps", "must be > 0")
    need(cfg.train.processes in (1, 2), "train.processes", "must be 1 or 2")
    need(cfg.train.demos >= 0, "train.demos", "must be >= 0")
    need(cfg.train.eval_every > 0 and cfg.train.eval_episodes > 0, "train.eval_every",
         "eval_every and eval_episodes must be > 0")
    need(cfg.train.rate_hz is None or cfg.train.rate_hz > 0, "train.rate_hz", "must be > 0 or null")
    try:
        OfflineConfig(**OmegaConf.to_container(cfg.offline))
    except ValueError as e:
        raise ConfigError(f"invalid value for 'offline': {e}") from None


def data_paths(cfg: DictConfig) -> list[Path]:
    """The EpisodeStores named by ``data=PATH[,PATH...]``; each must exist."""
    if not cfg.data:
        raise ConfigError("invalid value for 'data': name the EpisodeStore(s) to read, data=PATH[,PATH...]")
    paths = [Path(p.strip()) for p in str(cfg.data).split(",") if p.strip()]
    for path in paths:
        if not path.exists():
            raise ConfigError(f"invalid value for 'data': no EpisodeStore at {path}")
    return paths


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)


def _hydra_message(e: HydraException) -> str:
    """Hydra's multi-line composition errors, as one line that names the key."""
    text = str(e)
    if m := re.search(r"Could not override '([^']+)'", text):
        return f"unknown config key '{m[1]}' (to add a new key, write +{m[1]}=...)"
    if m := re.search(r"Could not find '([^/']+)/([^']+)'", text):
        options = re.search(r"Available options in '[^']+':(.*?)(Config search path|$)", text, re.S)
        listed = ", ".join(options[1].split()) if options else "none"
        return f"no '{m[2]}' in config group '{m[1]}'; available: {listed}"
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
