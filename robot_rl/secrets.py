"""Which config values are secrets, and a config with them blanked out, for every writer.

A config is written to ``config.yaml`` in the run folder and handed to wandb (whose files
sit in the run folder, and go to wandb's servers when online); neither may hold a secret.
:func:`redact` is what they write: the config as plain containers with every secret that
is set replaced by ``"<redacted>"``. A key is a secret when its name contains ``token``,
``api_key``/``apikey``, ``password``/``passwd``, ``secret``, ``credential`` or
``private_key``, or when it is a TLS private key (``key`` under a ``tls`` section, as
``learner.tls.key``: a path, but one that says where the key lies). Unset values (``None``,
``""``) stay as they are, so a reader still sees that nothing was given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

REDACTED = "<redacted>"
SECRET_WORDS = ("token", "api_key", "apikey", "password", "passwd", "secret", "credential", "private_key")


def is_secret(path: str) -> bool:
    """Whether the dotted config key ``path`` (``learner.tls.key``) holds a secret."""
    parts = [p.lower().replace("-", "_") for p in path.split(".") if p]
    if not parts:
        return False
    name = parts[-1]
    if any(word in name for word in SECRET_WORDS):
        return True
    return name == "key" and len(parts) > 1 and parts[-2] == "tls"


def redact(cfg: DictConfig | ListConfig | Mapping | list | Any, prefix: str = "") -> Any:
    """``cfg`` (an OmegaConf config or plain dicts and lists, resolved) with every secret that
    is set replaced by :data:`REDACTED`; the input is not changed."""
    if isinstance(cfg, DictConfig | ListConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    if isinstance(cfg, Mapping):
        out = {}
        for key, value in cfg.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if is_secret(path) and value not in (None, "", {}, []):
                out[key] = REDACTED  # a whole section under a secret's name, too
            else:
                out[key] = redact(value, path)
        return out
    if isinstance(cfg, list | tuple):
        return [redact(v, prefix) for v in cfg]
    return cfg


def redacted_yaml(cfg: DictConfig | Mapping) -> str:
    """:func:`redact`'s result as YAML (what ``config.yaml`` holds)."""
    return OmegaConf.to_yaml(OmegaConf.create(redact(cfg)))
