"""The typed config tree every command reads, and :func:`load_config`.

Each section's dataclass states its keys, types and defaults; ``load_config`` composes
``config/`` with the overrides (:func:`robot_rl.config.compose`), merges it into the
schema of the command, then checks what types cannot (ranges, choices, the safety file).
"""

from __future__ import annotations

from omegaconf import DictConfig

from robot_rl.config import compose
from robot_rl.schema.calibrate import CalibrateConfig
from robot_rl.schema.robot import Config, validate_robot
from robot_rl.schema.training import TrainConfig, validate_training

SCHEMAS = {"config": Config, "train": TrainConfig, "calibrate": CalibrateConfig}
#: old key or section → new, refused with the new name (issue 17: "critic" means only SAC's
#: Q-functions, "actor" only the acting loop; the network that chooses actions is the policy)
RENAMED = {"critic": "reward_model", "agent.actor_lr": "agent.policy_lr",
           "agent.actor_update_every": "agent.policy_update_every"}


def load_config(overrides: list[str] | tuple[str, ...] = (), name: str = "config") -> DictConfig:
    """Compose ``<name>.yaml`` with ``overrides`` and validate it; raises :class:`ConfigError`."""
    cfg = compose(name, overrides, SCHEMAS[name], RENAMED)
    validate(cfg)
    return cfg


def validate(cfg: DictConfig) -> None:
    validate_robot(cfg)
    if "train" in cfg:
        validate_training(cfg)
