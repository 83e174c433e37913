"""Crash-safe episode recording in a zarr v3 directory.

Layout (``<path>/``)::

    zarr.json            root group; attrs: format + version + spec, and ``episodes``, the commit record
    obs/<key>            N+1 observations per episode, concatenated over time
    steps/<key>          N steps per episode (action, reward, flags, ...), concatenated over time
    live_episode.journal the running episode's low-dim data, one checksummed record per step
    writer.lock          flock held by the one writer

Durability (a ``kill -9`` at any moment loses at most the step in flight):

1. Images go one chunk per frame, so appending a frame never rewrites another; zarr's
   LocalStore writes every chunk and metadata file to a temp file and renames it into place,
   so a rewritten file is either wholly old or wholly new.
2. A step's images are written first, then its low-dim data as one checksummed record appended
   to the journal. That record is the step's commit; ``append_step`` returns after it.
3. ``end_episode`` copies the journal into the low-dim arrays, then publishes the episode in
   the root ``episodes`` attribute (one atomic file), then deletes the journal.
4. Anything past the index and the journal's intact records is ignored, and overwritten later.
5. Unfinished episode rule: opening for append recovers a dead writer's journal into an
   episode with ``complete=False`` (every committed step kept; a journal with no step, only a
   first observation, is dropped). Read-only openers see it the same way while no writer lives.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.storage import LocalStore

from robot_rl.data.spec import StoreSpec
from robot_rl.data.store_format import (
    FORMAT_ATTR,
    FORMAT_NAME,
    FORMAT_VERSION,
    LOWDIM_CHUNK,
    CorruptStoreError,
    EpisodeInfo,
    StoreFormatError,
    acquire_writer_lock,
    default_image_compressors,
    lowdim_compressors,
    read_format,
    writer_alive,
)
from robot_rl.data.store_writer import LiveEpisode, Orphan, StoreWriter


class EpisodeStore(StoreWriter):
    """Episodes on disk, appended one step at a time by one writer and read by any number of readers.

    Use :meth:`create` or :meth:`open`; see the module docstring for the durability design.
    Not thread-safe: one thread writes.
    """

    def __init__(self, path: Path, root: zarr.Group, spec: StoreSpec, mode: str, lock_fd: int | None):
        self.path = path
        self.spec = spec
        self.mode = mode
        self._root = root
        self._lock_fd = lock_fd
        self._live: LiveEpisode | None = None
        self._orphan: Orphan | None = None
        self._arrays: dict[tuple[str, str], zarr.Array] = {}
        self._capacity: dict[tuple[str, str], int] = {}
        self._episodes: list[EpisodeInfo] = []
        self._load_state()

    # ------------------------------------------------------------------ opening

    @classmethod
    def create(cls, path: str | os.PathLike, spec: StoreSpec, *, image_compressors: list[Any] | None = None,
               ) -> EpisodeStore:
        """Create an empty store and return it open for appending."""
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise FileExistsError(f"{path} exists and is not an empty directory")
        path.mkdir(parents=True, exist_ok=True)
        root = zarr.open_group(LocalStore(path), mode="w-", zarr_format=3)
        for group, keys in (("obs", spec.obs), ("steps", spec.steps)):
            sub = root.create_group(group)
            for key, ks in keys.items():
                itemsize = np.dtype(ks.dtype).itemsize
                if ks.is_image:
                    chunks, compressors = (1, *ks.shape), image_compressors or default_image_compressors()
                else:
                    chunks, compressors = (LOWDIM_CHUNK, *ks.shape), lowdim_compressors(itemsize)
                sub.create_array(key, shape=(0, *ks.shape), chunks=chunks, dtype=ks.dtype, compressors=compressors,
                                 fill_value=0, config={"write_empty_chunks": True})
        # Written last: a store killed while being created is "not a store", never a half-valid one.
        root.update_attributes({FORMAT_ATTR: {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
                                               "spec": spec.to_json()}, "episodes": []})
        return cls.open(path, mode="a")

    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r", *, lock_timeout_s: float = 2.0) -> EpisodeStore:
        """Open for reading (``"r"``) or appending (``"a"``, which also recovers a dead writer's episode).

        A second writer waits up to ``lock_timeout_s`` for the first to let go, then fails.
        """
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        path = Path(path)
        if not (path / "zarr.json").is_file():
            raise StoreFormatError(f"{path} is not an EpisodeStore (no zarr.json)")
        lock_fd = acquire_writer_lock(path, lock_timeout_s) if mode == "a" else None
        try:
            try:
                root = zarr.open_group(LocalStore(path, read_only=mode == "r"), mode="r" if mode == "r" else "r+")
            except Exception as exc:
                raise StoreFormatError(f"{path} is not an EpisodeStore: {exc}") from exc
            spec = read_format(path, root.attrs.asdict())
            store = cls(path, root, spec, mode, lock_fd)
            if mode == "a":
                store._recover()
            return store
        except BaseException:
            if lock_fd is not None:
                os.close(lock_fd)
            raise

    @classmethod
    def append_or_create(cls, path: str | os.PathLike, spec: StoreSpec) -> EpisodeStore:
        """Open the store at ``path`` for appending, or create it; a store of another layout
        (observation or action keys, shapes, dtypes) is refused with :class:`StoreFormatError`."""
        if not Path(path).exists():
            return cls.create(path, spec)
        store = cls.open(path, mode="a")
        if store.spec != spec:
            store.close()
            raise StoreFormatError(f"{path} holds episodes of another observation/action layout; record to a new path")
        return store

    def refresh(self) -> None:
        """Re-read the index, so a reader sees the episodes a live writer has committed since."""
        if self.mode != "r":
            return
        self._root = zarr.open_group(LocalStore(self.path, read_only=True), mode="r")
        self._arrays.clear()
        self._load_state()

    def close(self) -> None:
        """Release the store; a running episode is committed as unfinished (``complete=False``)."""
        if self.mode == "a" and self._lock_fd is not None:
            if self._live is not None:
                self._commit_live(complete=False, end_attrs={"end_reason": "store closed"})
            self._trim()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load_state(self) -> None:
        attrs = self._root.attrs.asdict()
        read_format(self.path, attrs)
        self._episodes = [EpisodeInfo.from_json(e) for e in attrs.get("episodes", [])]
        for group, keys in (("obs", self.spec.obs), ("steps", self.spec.steps)):
            for key in keys:
                try:
                    # A frame equal to the fill value must still get its chunk file: a missing
                    # chunk reads as zeros, and check() treats it as lost data.
                    arr = self._root[f"{group}/{key}"].with_config({"write_empty_chunks": True})
                except KeyError as exc:
                    raise CorruptStoreError(f"{self.path}: array {group}/{key} of the spec is missing") from exc
                self._arrays[group, key] = arr
                self._capacity[group, key] = arr.shape[0]
        self._orphan = None
        if self.mode == "r" and not writer_alive(self.path):
            self._orphan = self._read_orphan()

    # ------------------------------------------------------------------ reading

    def episodes(self, *, source: str | Iterable[str] | None = None, success: bool | None = None,
                 label: str | None = None, complete: bool | None = None) -> list[EpisodeInfo]:
        """Committed episodes (plus a dead writer's unfinished one), optionally filtered."""
        found = list(self._episodes)
        if self._orphan is not None:
            found.append(self._orphan.info)
        sources = {source} if isinstance(source, str) else set(source) if source is not None else None
        return [
            e for e in found
            if (sources is None or e.source in sources)
            and (success is None or e.success is success)
            and (label is None or label in e.labels)
            and (complete is None or e.complete is complete)
        ]

    def __len__(self) -> int:
        return len(self._episodes) + (self._orphan is not None)

    def __iter__(self) -> Iterator[EpisodeInfo]:
        return iter(self.episodes())

    @property
    def num_steps(self) -> int:
        return sum(e.length for e in self.episodes())

    def iter_episodes(self, **filters: Any) -> Iterator[tuple[EpisodeInfo, dict[str, Any]]]:
        """Yield ``(info, data)`` for the episodes that pass :meth:`episodes`' filters."""
        for info in self.episodes(**filters):
            yield info, self.load_episode(info.index)

    def load_episode(self, index: int) -> dict[str, Any]:
        """``{"obs": {key: (N+1, ...)}, step key: (N, ...)}`` as numpy arrays."""
        infos = self.episodes()
        if not -len(infos) <= index < len(infos):
            raise IndexError(f"episode {index} out of range; the store has {len(infos)}")
        info = infos[index]
        orphan = self._orphan if self._orphan is not None and info is self._orphan.info else None
        obs: dict[str, np.ndarray] = {}
        for key in self.spec.obs:
            if orphan is not None and key in orphan.lowdim:
                obs[key] = orphan.lowdim[key]
            else:
                obs[key] = self._read(info, "obs", key, info.obs_start, info.obs_stop)
        data: dict[str, Any] = {"obs": obs}
        for key in self.spec.steps:
            if orphan is not None:
                data[key] = orphan.lowdim[f"steps/{key}"]
            else:
                data[key] = self._read(info, "steps", key, info.step_start, info.step_stop)
        return data

    def _read(self, info: EpisodeInfo, group: str, key: str, start: int, stop: int) -> np.ndarray:
        arr = self._arrays[group, key]
        where = f"episode {info.index}, key {group}/{key}"
        if stop > arr.shape[0]:
            raise CorruptStoreError(f"{where}: needs rows {start}:{stop} but the array has {arr.shape[0]}")
        missing = self._missing_chunks(arr, start, stop)
        if missing:
            raise CorruptStoreError(f"{where}: chunk file(s) missing, e.g. {missing[0]}")
        try:
            return np.asarray(arr[start:stop])
        except Exception as exc:
            raise CorruptStoreError(f"{where}: cannot decode ({type(exc).__name__}: {exc})") from exc


    def _missing_chunks(self, arr: zarr.Array, start: int, stop: int) -> list[str]:
        """zarr reads a missing chunk as fill values; a lost frame must be an error instead."""
        if stop <= start:
            return []
        step = arr.chunks[0]
        rest = (0,) * (arr.ndim - 1)
        missing = []
        for c in range(start // step, (stop - 1) // step + 1):
            key = arr.metadata.encode_chunk_key((c, *rest))
            if not (self.path / arr.path / key).is_file():
                missing.append(f"{arr.path}/{key}")
        return missing

    def check(self) -> list[str]:
        """Decode every committed chunk and check the index's bookkeeping; return the problems found."""
        problems: list[str] = []
        obs_end = step_end = 0
        for info in self.episodes():
            if info.obs_start != obs_end or info.step_start != step_end:
                problems.append(f"episode {info.index}: starts at obs {info.obs_start}/step {info.step_start}, "
                                f"expected {obs_end}/{step_end}")
            if info.length < 0:
                problems.append(f"episode {info.index}: negative length {info.length}")
            obs_end, step_end = info.obs_stop, info.step_stop
            try:
                data = self.load_episode(info.index)
            except CorruptStoreError as exc:
                problems.append(str(exc))
                continue
            for key, value in data["obs"].items():
                if len(value) != info.length + 1:
                    problems.append(f"episode {info.index}, key obs/{key}: {len(value)} rows, want {info.length + 1}")
            for key in self.spec.steps:
                if len(data[key]) != info.length:
                    problems.append(f"episode {info.index}, key steps/{key}: {len(data[key])} rows, want {info.length}")
        return problems
