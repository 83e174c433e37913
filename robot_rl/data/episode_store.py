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

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec
from zarr.storage import LocalStore

from robot_rl.data.journal import EpisodeJournal, read_journal
from robot_rl.data.spec import StoreSpec

FORMAT_NAME = "robot_rl.episode_store"
FORMAT_VERSION = 1
SOURCES = ("demo", "online", "eval")

_FORMAT_ATTR = "robot_rl_episode_store"
_JOURNAL = "live_episode.journal"
_LOCK = "writer.lock"
_LOWDIM_CHUNK = 4096
_GROW_MIN = 1024
_RESERVED_ATTRS = frozenset(
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


@dataclass
class _LiveEpisode:
    """The writer's running episode: its place, its begin attributes, and its low-dim data so far."""

    obs_start: int
    step_start: int
    attrs: dict[str, Any]
    journal: EpisodeJournal
    lowdim_obs: dict[str, list[np.ndarray]]
    steps: dict[str, list[np.ndarray]]

    @property
    def length(self) -> int:
        return len(next(iter(self.steps.values())))


@dataclass
class _Orphan:
    """A dead writer's unfinished episode, as a reader sees it before anyone recovers it."""

    info: EpisodeInfo
    lowdim: dict[str, np.ndarray]


def default_image_compressors() -> list[Any]:
    """zstd level 1 in Blosc: lossless, ~1000 frames/s per core through zarr, half lz4's size on
    rendered scenes; the CRC turns a flipped bit into an error instead of a wrong pixel."""
    return [BloscCodec(cname="zstd", clevel=1, shuffle="noshuffle", typesize=1), Crc32cCodec()]


def _lowdim_compressors(itemsize: int) -> list[Any]:
    return [BloscCodec(cname="zstd", clevel=3, shuffle="shuffle", typesize=itemsize), Crc32cCodec()]


def _check_json(what: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from exc


class EpisodeStore:
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
        self._live: _LiveEpisode | None = None
        self._orphan: _Orphan | None = None
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
                    chunks, compressors = (_LOWDIM_CHUNK, *ks.shape), _lowdim_compressors(itemsize)
                sub.create_array(key, shape=(0, *ks.shape), chunks=chunks, dtype=ks.dtype, compressors=compressors,
                                 fill_value=0, config={"write_empty_chunks": True})
        # Written last: a store killed while being created is "not a store", never a half-valid one.
        root.update_attributes({_FORMAT_ATTR: {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
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
        lock_fd = _acquire_writer_lock(path, lock_timeout_s) if mode == "a" else None
        try:
            try:
                root = zarr.open_group(LocalStore(path, read_only=mode == "r"), mode="r" if mode == "r" else "r+")
            except Exception as exc:
                raise StoreFormatError(f"{path} is not an EpisodeStore: {exc}") from exc
            spec = _read_format(path, root.attrs.asdict())
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
        _read_format(self.path, attrs)
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
        if self.mode == "r" and not _writer_alive(self.path):
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

    # ------------------------------------------------------------------ writing

    def begin_episode(self, first_obs: Mapping[str, Any], *, source: str = "online", task: str = "",
                      config_hash: str = "", **attrs: Any) -> None:
        """Start an episode at its first observation; ``attrs`` is any JSON (kept in the index)."""
        self._require_writer()
        if self._live is not None:
            raise RuntimeError("an episode is already running; call end_episode first")
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        clash = sorted(_RESERVED_ATTRS & set(attrs))
        if clash:
            raise ValueError(f"attribute(s) {clash} are index fields; pass them by their keyword")
        _check_json("episode attributes", attrs)
        obs = self.spec.validate_obs(first_obs)
        obs_start, step_start = self._committed_end()
        self._write_images(obs_start, obs)
        header = {"obs_start": obs_start, "step_start": step_start,
                  "attrs": {"source": source, "task": task, "config_hash": config_hash, "attrs": attrs,
                            "begin_time": time.time()}}
        journal = EpisodeJournal(self.path / _JOURNAL, self.spec, header, obs)
        self._live = _LiveEpisode(obs_start, step_start, header["attrs"], journal,
                                  {k: [obs[k]] for k in self.spec.lowdim_obs_keys},
                                  {k: [] for k in self.spec.steps})

    def append_step(self, *, obs: Mapping[str, Any], **fields: Any) -> int:
        """Record one step and the observation it led to; once this returns the step survives a kill.

        Returns the number of steps the running episode now has.
        """
        self._require_writer()
        live = self._live
        if live is None:
            raise RuntimeError("no running episode; call begin_episode first")
        step = self.spec.validate_step(fields)
        next_obs = self.spec.validate_obs(obs)
        n = live.length
        self._write_images(live.obs_start + n + 1, next_obs)
        live.journal.append(step, next_obs)
        for key in self.spec.lowdim_obs_keys:
            live.lowdim_obs[key].append(next_obs[key])
        for key, value in step.items():
            live.steps[key].append(value)
        return n + 1

    def end_episode(self, *, success: bool | None = None, labels: Iterable[str] = (), **attrs: Any) -> EpisodeInfo:
        """Commit the running episode to the index and return its entry."""
        self._require_writer()
        if self._live is None:
            raise RuntimeError("no running episode to end")
        clash = sorted(_RESERVED_ATTRS & set(attrs))
        if clash:
            raise ValueError(f"attribute(s) {clash} are index fields; pass them by their keyword")
        labels = tuple(labels)
        if not all(isinstance(x, str) for x in labels):
            raise ValueError(f"labels must be strings, got {labels!r}")
        _check_json("episode attributes", attrs)
        return self._commit_live(complete=True, end_attrs=attrs, success=success, labels=labels)

    def _commit_live(self, *, complete: bool, end_attrs: Mapping[str, Any], success: bool | None = None,
                     labels: tuple[str, ...] = ()) -> EpisodeInfo:
        live = self._live
        assert live is not None
        lowdim = {f"obs/{k}": np.stack(v) for k, v in live.lowdim_obs.items()}
        for key, spec in self.spec.steps.items():
            values = live.steps[key]
            lowdim[f"steps/{key}"] = np.stack(values) if values else np.zeros((0, *spec.shape), spec.dtype)
        info = self._publish(live.obs_start, live.step_start, live.length, live.attrs, lowdim,
                             complete=complete, success=success, labels=labels, end_attrs=end_attrs)
        live.journal.close()
        self._live = None
        return info

    def _publish(self, obs_start: int, step_start: int, length: int, begin: Mapping[str, Any],
                 lowdim: Mapping[str, np.ndarray], *, complete: bool, success: bool | None,
                 labels: tuple[str, ...], end_attrs: Mapping[str, Any]) -> EpisodeInfo:
        """Copy low-dim data into the arrays, then commit the index entry, then drop the journal."""
        for name, values in lowdim.items():
            group, key = name.split("/", 1)
            start = obs_start if group == "obs" else step_start
            if len(values):
                self._ensure_capacity(group, key, start + len(values))
                self._arrays[group, key][start : start + len(values)] = values
        info = EpisodeInfo(
            index=len(self._episodes), obs_start=obs_start, step_start=step_start, length=length,
            source=begin["source"], task=begin["task"], success=success, labels=labels,
            config_hash=begin["config_hash"], complete=complete,
            attrs={**begin["attrs"], **end_attrs, "begin_time": begin.get("begin_time"), "end_time": time.time()},
        )
        episodes = [*self._episodes, info]
        self._root.update_attributes({"episodes": [e.to_json() for e in episodes]})
        self._episodes = episodes
        with contextlib.suppress(FileNotFoundError):
            (self.path / _JOURNAL).unlink()
        return info

    def _write_images(self, row: int, obs: Mapping[str, np.ndarray]) -> None:
        for key in self.spec.image_keys:
            self._ensure_capacity("obs", key, row + 1)
            self._arrays["obs", key][row] = obs[key]

    def _ensure_capacity(self, group: str, key: str, rows: int) -> None:
        """Grow arrays in large steps: a resize rewrites metadata, which need not happen every step."""
        if self._capacity[group, key] >= rows:
            return
        arr = self._arrays[group, key]
        new = max(rows, 2 * arr.shape[0], _GROW_MIN)
        arr.resize((new, *arr.shape[1:]))
        self._capacity[group, key] = new

    def _committed_end(self) -> tuple[int, int]:
        if not self._episodes:
            return 0, 0
        last = self._episodes[-1]
        return last.obs_stop, last.step_stop

    def _require_writer(self) -> None:
        if self.mode != "a" or self._lock_fd is None:
            raise RuntimeError(f"{self.path} is not open for appending (open it with mode='a')")

    def _trim(self) -> None:
        """Cut arrays back to the committed rows, so plain zarr readers see no uncommitted tail."""
        obs_end, step_end = self._committed_end()
        for (group, key), arr in self._arrays.items():
            rows = obs_end if group == "obs" else step_end
            if arr.shape[0] != rows:
                arr.resize((rows, *arr.shape[1:]))
                self._capacity[group, key] = rows

    # ------------------------------------------------------------------ recovery

    def _read_orphan(self) -> _Orphan | None:
        contents = read_journal(self.path / _JOURNAL, self.spec)
        obs_end, step_end = self._committed_end()
        if contents is None or contents.header["obs_start"] < obs_end or contents.length == 0:
            return None  # stale (already committed), or only a first observation: dropped by rule
        if (contents.header["obs_start"], contents.header["step_start"]) != (obs_end, step_end):
            raise CorruptStoreError(f"{self.path}: journal starts at obs {contents.header['obs_start']}, "
                                    f"but the index ends at obs {obs_end}")
        begin = contents.header["attrs"]
        lowdim = {k: np.concatenate([contents.first_obs[k][None], contents.next_obs[k]])
                  for k in self.spec.lowdim_obs_keys}
        lowdim.update({f"steps/{k}": v for k, v in contents.steps.items()})
        info = EpisodeInfo(index=len(self._episodes), obs_start=obs_end, step_start=step_end,
                           length=contents.length, source=begin["source"], task=begin["task"],
                           config_hash=begin["config_hash"], complete=False,
                           attrs={**begin["attrs"], "begin_time": begin.get("begin_time"),
                                  "end_reason": "writer died"})
        return _Orphan(info, lowdim)

    def _recover(self) -> None:
        """Turn a dead writer's journal into an unfinished episode, and sweep temp files it left."""
        orphan = self._read_orphan()
        if orphan is not None:
            info = orphan.info
            lowdim = {(k if "/" in k else f"obs/{k}"): v for k, v in orphan.lowdim.items()}
            begin = {"source": info.source, "task": info.task, "config_hash": info.config_hash,
                     "attrs": {k: v for k, v in info.attrs.items() if k not in ("begin_time", "end_reason")},
                     "begin_time": info.attrs.get("begin_time")}
            self._publish(info.obs_start, info.step_start, info.length, begin, lowdim, complete=False,
                          success=None, labels=(), end_attrs={"end_reason": "writer died"})
        else:
            with contextlib.suppress(FileNotFoundError):
                (self.path / _JOURNAL).unlink()
        for stale in self.path.rglob("*.partial"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        with contextlib.suppress(FileNotFoundError):
            (self.path / (_JOURNAL + ".tmp")).unlink()


def _read_format(path: Path, attrs: Mapping[str, Any]) -> StoreSpec:
    fmt = attrs.get(_FORMAT_ATTR)
    if not isinstance(fmt, Mapping) or fmt.get("format") != FORMAT_NAME:
        raise StoreFormatError(f"{path} is a zarr group but not an EpisodeStore (no {_FORMAT_ATTR!r} attribute)")
    version = fmt.get("format_version")
    if version != FORMAT_VERSION:
        raise StoreFormatError(
            f"{path} has EpisodeStore format version {version!r}; this robot_rl reads version {FORMAT_VERSION}"
        )
    return StoreSpec.from_json(fmt["spec"])


def _acquire_writer_lock(path: Path, timeout_s: float) -> int:
    """One writer at a time; the kernel drops the lock when the writer dies, even by kill -9."""
    fd = os.open(path / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
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


def _writer_alive(path: Path) -> bool:
    try:
        fd = os.open(path / _LOCK, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
