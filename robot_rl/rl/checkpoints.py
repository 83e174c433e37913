"""Checkpoint files: written atomically (a crash mid-write leaves the previous one), found from
a run folder, and loaded with one-line errors. torch is imported only when one is read or
written, so the CLI starts fast."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from robot_rl.files import atomic_write

CHECKPOINT = "checkpoint.pt"


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or does not fit; its message is one line."""


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> Path:
    import torch

    return atomic_write(path, lambda tmp: torch.save(dict(state), tmp))


def checkpoint_file(path: str | Path) -> Path:
    """``path`` itself, or the checkpoint in a run folder (offline's, or train's learner/)."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / CHECKPOINT, path / "learner" / CHECKPOINT):
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"no {CHECKPOINT} in {path} or {path / 'learner'}")
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    return path


def load_checkpoint(path: str | Path, device: Any = "cpu") -> dict[str, Any]:
    """The checkpoint's contents; :class:`CheckpointError` if it cannot be used."""
    import torch

    path = checkpoint_file(path)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # torch raises many kinds for a truncated or foreign file
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else 'no detail'})") from None
    if not isinstance(state, dict) or "agent" not in state:
        raise CheckpointError(f"{path} is not a robot_rl checkpoint (no agent state)")
    return state


def load_agent_state(agent: Any, state: Mapping[str, Any], path: str | Path) -> None:
    """``agent.load_state_dict`` with a one-line error when the networks do not match."""
    try:
        agent.load_state_dict(state)
    except (RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path} does not fit this agent (other cameras, image size, action or network "
                         f"settings?): {first}") from None
