"""Episode recording (zarr) and replay for learning.

Exports resolve lazily, so a process that only records episodes does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "KeySpec": "robot_rl.data.spec",
    "StoreSpec": "robot_rl.data.spec",
    "default_step_keys": "robot_rl.data.spec",
    "EpisodeStore": "robot_rl.data.episode_store",
    "EpisodeInfo": "robot_rl.data.store_format",
    "StoreFormatError": "robot_rl.data.store_format",
    "CorruptStoreError": "robot_rl.data.store_format",
    "StoreLockedError": "robot_rl.data.store_format",
    "ReplayBuffer": "robot_rl.data.replay_buffer",
    "MixtureSampler": "robot_rl.data.sampling",
    "BatchPrefetcher": "robot_rl.data.sampling",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
