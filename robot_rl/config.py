"""Reading the hydra config tree: where it is, composing it, and the one-line error.

Hydra composes ``config/`` with the command line's ``key=value`` overrides; the result is
merged into a typed schema (``robot_rl.schema`` holds the tree's), so a wrong key or a
value of the wrong type fails before anything starts, with one line that names the key.

This module imports nothing else of robot_rl: every layer may raise :class:`ConfigError`
and find files in the tree without depending on the schema or on the code it configures.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


class ConfigError(ValueError):
    """A config problem the user can fix; its message is one line."""


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


def compose(name: str, overrides: list[str] | tuple[str, ...], schema: type,
            renamed: dict[str, str] | None = None) -> DictConfig:
    """``<name>.yaml`` composed with ``overrides`` and merged into the dataclass ``schema``;
    raises :class:`ConfigError` naming the key. ``renamed``: an old key or section → its new
    name, refused with the new name (in an override or in a config file)."""
    renamed = renamed or {}
    for override in overrides:
        _refuse_renamed(override.split("=", 1)[0].lstrip("+~"), renamed, "")
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            raw = hydra_compose(config_name=name, overrides=[_comma_string(o) for o in overrides])
    except HydraException as e:
        raise ConfigError(_hydra_message(e)) from None
    for key in _dotted_keys(raw):
        _refuse_renamed(key, renamed, " in a config file")
    try:
        return OmegaConf.merge(OmegaConf.structured(schema), raw)
    except OmegaConfBaseException as e:
        raise ConfigError(f"invalid value for '{e.full_key}': {str(e.msg).splitlines()[0]}") from None


def _comma_string(override: str) -> str:
    """``key=a,b`` as the string ``'a,b'`` (``data=PATH,PATH``): hydra reads a bare comma as
    a sweep, which a single run refuses. Lists (``[a,b]``), quoted and nested values pass as given."""
    key, sep, value = override.partition("=")
    if sep and "," in value and not any(c in value for c in "[]{}()'\"\\"):
        return f"{key}='{value}'"
    return override


def require(cfg: DictConfig, ok: Any, key: str, why: str) -> None:
    """Raise the one-line error for ``key`` (with its value) unless ``ok``."""
    if not ok:
        raise ConfigError(f"invalid value for '{key}': {why} (got {OmegaConf.select(cfg, key)})")


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


def _refuse_renamed(key: str, renamed: dict[str, str], where: str) -> None:
    for old, new in renamed.items():
        if key == old or key.startswith(old + "."):
            new_key = new + key[len(old):]
            raise ConfigError(f"config key '{key}' was renamed to '{new_key}'; write {new_key}=...{where}")


def _dotted_keys(cfg: Any, prefix: str = "") -> list[str]:
    keys = []
    for key, value in cfg.items() if isinstance(cfg, DictConfig) else ():
        keys.append(f"{prefix}{key}")
        keys += _dotted_keys(value, f"{prefix}{key}.")
    return keys


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
