"""Writing files so that a crash never leaves half of one: write beside it, fsync, rename."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object], fsync: bool = True) -> Path:
    """Replace ``path`` in one step with what ``write(tmp)`` writes to ``tmp``, a file beside it
    (``<name>.tmp``): readers see the old file or the new one, never part of one. ``write`` may
    be anything that writes a path (``Path.write_bytes``, ``torch.save``). The file is fsynced
    before the rename unless ``fsync=False`` (a file whose later appends are not fsynced either)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    if fsync:
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = True) -> Path:
    """Replace ``path`` with ``data`` in one step: readers see the old file or the new one."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data), fsync)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Replace ``path`` with ``text`` (UTF-8) in one step: readers see the old file or the new one."""
    return atomic_write_bytes(path, text.encode())
