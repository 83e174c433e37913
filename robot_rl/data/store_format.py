"""What an EpisodeStore folder is, below the store's methods: the format name and version,
its file names, array codecs, the index entry (:class:`EpisodeInfo`), the errors, and the
writer lock file. :mod:`robot_rl.data.episode_store` describes the layout and durability design.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zarr.codecs import BloscCodec, Crc32cCodec

from robot_rl.data.spec import StoreSpec

FORMAT_NAME = "robot_rl.episode_store"
FORMAT_VERSION = 1
SOURCES = ("demo", "online", "eval")

FORMAT_ATTR = "robot_rl_episode_store"
JOURNAL_FILE = "live_episode.journal"
LOCK_FILE = "writer.lock"
LOWDIM_CHUNK = 4096
GROW_MIN = 1024
RESERVED_ATTRS = frozenset(
    {"index", "obs_start", "step_start", "length", "source", "task", "success", "labels", "config_hash", "complete"}
)


class StoreFormatError(ValueError):
    """The path is not an EpisodeStore, or one of a format version this code cannot read."""


class CorruptStoreError(RuntimeError):
    """Stored data fails to decode or is missing; the message names the episode and key."""


class StoreLockedError(RuntimeError):
    """Another process holds the store open for writing."""


@dataclass(frozen=True)
class EpisodeInfo:
    """One entry of the episode index: where the episode lies and what is known about it."""

    index: int
    obs_start: int
    step_start: int
    length: int
    source: str = "online"
    task: str = ""
    success: bool | None = None
    labels: tuple[str, ...] = ()
    config_hash: str = ""
    complete: bool = True
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def obs_stop(self) -> int:
        return self.obs_start + self.length + 1

    @property
    def step_stop(self) -> int:
        return self.step_start + self.length

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = list(self.labels)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EpisodeInfo:
        return cls(**{**data, "labels": tuple(data.get("labels", ()))})


def default_image_compressors() -> list[Any]:
    """zstd level 1 in Blosc: lossless, ~1000 frames/s per core through zarr, half lz4's size on
    rendered scenes; the CRC turns a flipped bit into an error instead of a wrong pixel."""
    return [BloscCodec(cname="zstd", clevel=1, shuffle="noshuffle", typesize=1), Crc32cCodec()]


def lowdim_compressors(itemsize: int) -> list[Any]:
    return [BloscCodec(cname="zstd", clevel=3, shuffle="shuffle", typesize=itemsize), Crc32cCodec()]


def check_json(what: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from exc


def read_format(path: Path, attrs: Mapping[str, Any]) -> StoreSpec:
    fmt = attrs.get(FORMAT_ATTR)
    if not isinstance(fmt, Mapping) or fmt.get("format") != FORMAT_NAME:
        raise StoreFormatError(f"{path} is a zarr group but not an EpisodeStore (no {FORMAT_ATTR!r} attribute)")
    version = fmt.get("format_version")
    if version != FORMAT_VERSION:
        raise StoreFormatError(
            f"{path} has EpisodeStore format version {version!r}; this robot_rl reads version {FORMAT_VERSION}"
        )
    return StoreSpec.from_json(fmt["spec"])


def acquire_writer_lock(path: Path, timeout_s: float) -> int:
    """One writer at a time; the kernel drops the lock when the writer dies, even by kill -9."""
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise StoreLockedError(f"{path} is open for writing by another process") from None
            time.sleep(0.01)


def writer_alive(path: Path) -> bool:
    try:
        fd = os.open(path / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
