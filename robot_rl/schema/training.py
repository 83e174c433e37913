"""The config tree's learning side: agent, learner, train, reward_model, offline.

Plain dataclasses, free of torch, so the config schema and the learning code share one
definition (``robot_rl.rl`` builds its agent and learner from them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from omegaconf import DictConfig, OmegaConf

from robot_rl.config import ConfigError, require
from robot_rl.schema.robot import Config

#: agent.bc_weight when it is not set and training starts from a checkpoint (init=)
INIT_BC_WEIGHT = 20.0


@dataclass
class AgentConfig:
    encoder: str = "patchify"  # patchify | drq | resnet
    encoder_features: int = 50
    resnet_path: str | None = None  # local transformers ResNet folder, for encoder=resnet
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    num_critics: int = 2
    num_target_critics: int | None = None  # REDQ: min over a random subset of this size; None: all
    discount: float = 0.97
    tau: float = 0.005
    policy_lr: float = 3e-4
    critic_lr: float = 3e-4
    temperature_lr: float = 3e-4
    init_temperature: float = 1e-2
    target_entropy: float | None = None  # None: -|A| / 2
    policy_update_every: int = 2  # critic:policy update ratio
    augmentation_pad: int = 4  # DrQ random shift in pixels; 0 turns it off
    grad_clip: float | None = None
    mixed_precision: bool = True  # bf16 autocast, CUDA only
    # HIL-SERL's discrete gripper: a 3-way double-DQN critic {open, stay, close} for the last
    # action dimension (needs task.action.gripper_mode=toggle), with a penalty per open/close
    gripper_critic: bool = False
    gripper_penalty: float = 0.02
    gripper_epsilon: float = 0.1  # exploration: a random gripper choice this often while training
    # imitation of the demo buffer's actions next to SAC's Q term, which is then divided by the
    # batch's mean |Q| when above 1 (TD3+BC); keeps a policy started from demos on them. 0: SAC;
    # None: INIT_BC_WEIGHT when starting from a checkpoint (train init=), else 0
    bc_weight: float | None = None

    def __post_init__(self) -> None:
        if self.num_critics < 1:
            raise ValueError(f"num_critics must be >= 1, got {self.num_critics}")
        if self.num_target_critics is not None and not 1 <= self.num_target_critics <= self.num_critics:
            raise ValueError(f"num_target_critics must be in [1, num_critics={self.num_critics}], "
                             f"got {self.num_target_critics}")
        if not 0 < self.discount <= 1 or not 0 < self.tau <= 1:
            raise ValueError(f"discount and tau must be in (0, 1], got {self.discount} and {self.tau}")
        if self.policy_update_every < 1 or self.init_temperature <= 0:
            raise ValueError("policy_update_every must be >= 1 and init_temperature > 0")
        if self.augmentation_pad < 0:
            raise ValueError(f"augmentation_pad must be >= 0, got {self.augmentation_pad}")
        if min(self.policy_lr, self.critic_lr, self.temperature_lr) <= 0:
            raise ValueError("learning rates must be > 0")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"grad_clip must be > 0, got {self.grad_clip}")
        if self.bc_weight is not None and self.bc_weight < 0:
            raise ValueError(f"bc_weight must be >= 0, got {self.bc_weight}")
        if self.gripper_penalty < 0 or not 0 <= self.gripper_epsilon <= 1:
            raise ValueError("gripper_penalty must be >= 0 and gripper_epsilon in [0, 1]")


@dataclass
class LearnerConfig:
    batch_size: int = 256
    warmup_transitions: int = 500  # updates start once the buffers hold this many
    utd_ratio: float = 1.0  # gradient updates per environment step received
    demo_ratio: float = 0.5  # share of each batch drawn from the demo buffer (when it has data)
    capacity: int = 200_000  # per buffer
    publish_every: int = 50  # updates between weight publications
    checkpoint_every: int = 1000  # updates between checkpoints
    record: bool = True  # keep what arrives in run_dir/replay.zarr
    critic_warmup: int = 1000  # with init=: updates in which only the critics learn, the given policy held

    def __post_init__(self) -> None:
        if self.critic_warmup < 0:
            raise ValueError(f"critic_warmup must be >= 0, got {self.critic_warmup}")
        if self.batch_size < 1 or self.capacity < 2 or self.publish_every < 1 or self.checkpoint_every < 1:
            raise ValueError("batch_size, publish_every and checkpoint_every must be >= 1, capacity >= 2")
        if not 0.0 <= self.demo_ratio <= 1.0 or self.utd_ratio <= 0:
            raise ValueError(f"demo_ratio must be in [0, 1] and utd_ratio > 0, got {self.demo_ratio}, "
                             f"{self.utd_ratio}")


OFFLINE_METHODS = ("bc", "calql")


@dataclass
class OfflineConfig:
    """`robot-rl offline`: learning from recordings alone, before (or instead of) the robot."""

    method: str = "calql"  # bc: the policy imitates the data | calql: Cal-QL critic, SAC policy plus a BC term
    updates: int = 20_000  # gradient updates in all (a resumed run continues to this count)
    q_weight: float = 0.0  # calql: the SAC (Q) term in the policy's loss next to imitation's 1 (0: the policy imitates)
    advantage_weight: float = 0.0  # calql: imitation weighted by exp(this × advantage) (AWAC); 0: plain imitation
    cql_alpha: float = 1.0  # calql: weight of the conservative term
    cql_samples: int = 4  # calql: actions per kind (random, policy at s, policy at s') in the conservative term
    calibrated: bool = True  # calql: values held at the scale of the data's returns-to-go (Cal-QL); false: CQL
    eval_every: int = 2000  # updates between evaluations in sim (0: none; never on hardware data)
    eval_episodes: int = 10
    checkpoint_every: int = 1000  # updates between atomic checkpoints
    log_every: int = 100  # updates between metric lines (metrics.jsonl, wandb)

    def __post_init__(self) -> None:
        if self.method not in OFFLINE_METHODS:
            raise ValueError(f"method must be one of {OFFLINE_METHODS}, got {self.method!r}")
        if self.updates < 1 or self.checkpoint_every < 1 or self.log_every < 1 or self.cql_samples < 1:
            raise ValueError("updates, checkpoint_every, log_every and cql_samples must be >= 1")
        if self.eval_every < 0 or self.eval_episodes < 1:
            raise ValueError("eval_every must be >= 0 and eval_episodes >= 1")
        if self.q_weight < 0 or self.cql_alpha < 0 or self.advantage_weight < 0:
            raise ValueError(f"q_weight, cql_alpha and advantage_weight must be >= 0, got {self.q_weight}, "
                             f"{self.cql_alpha}, {self.advantage_weight}")


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
class RewardModelSection:
    """What rewards learning: the env itself, or a trained reward model (robot_rl/rewards)."""

    name: str = "env"  # env | learned_progress | classifier
    path: str | None = None  # the trained reward model's file (robot-rl reward-model train)
    shaping: float = 1.0  # λ of the potential-based progress shaping; 0: success reward alone
    success_reward: float = 1.0
    threshold: float = 0.5  # success_prob from which a frame counts as done
    confirm: int = 2  # consecutive done frames that declare success and end the episode
    success_frames: int = 3  # reward-model train, classifier: the last frames of a successful episode are positives
    epochs: int = 30  # reward-model train
    hue_jitter: float = 0.0  # reward-model train: each frame's colours turned by up to this, degrees (180: any hue)
    brightness_jitter: float = 0.0  # reward-model train: each frame's brightness scaled by up to 1 ± this
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
    reward_model: RewardModelSection = field(default_factory=RewardModelSection)
    offline: OfflineConfig = field(default_factory=OfflineConfig)
    data: str | None = None  # offline, train, reward-model train / eval: EpisodeStore(s), comma-separated
    init: str | None = None  # train: start from this checkpoint (e.g. robot-rl offline's)
    out: str | None = None  # reward-model train: where the trained reward model goes


def validate_training(cfg: DictConfig) -> None:
    """Checks that types alone cannot express: agent, reward_model, learner, train."""
    need = partial(require, cfg)

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
    need(cfg.reward_model.name in ("env", "learned_progress", "classifier", "embedding", "vlm_progress"),
         "reward_model.name",
         "must be env, learned_progress, classifier, embedding or vlm_progress")
    need(cfg.reward_model.confirm >= 1, "reward_model.confirm", "must be >= 1")
    need(cfg.reward_model.success_frames >= 1, "reward_model.success_frames", "must be >= 1")
    need(0 < cfg.reward_model.threshold < 1, "reward_model.threshold", "must be in (0, 1)")
    need(0 <= cfg.reward_model.hue_jitter <= 180, "reward_model.hue_jitter", "must be in [0, 180] degrees")
    need(0 <= cfg.reward_model.brightness_jitter < 1, "reward_model.brightness_jitter", "must be in [0, 1)")
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
