"""The writing half of :class:`~robot_rl.data.episode_store.EpisodeStore`: one episode at a
time, each step committed to the journal, each finished episode published to the index, and
a dead writer's journal recovered as an unfinished episode (steps 2 to 5 of the durability
design in :mod:`robot_rl.data.episode_store`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from robot_rl.data.journal import EpisodeJournal, read_journal
from robot_rl.data.spec import StoreSpec
from robot_rl.data.store_format import (
    GROW_MIN,
    JOURNAL_FILE,
    RESERVED_ATTRS,
    SOURCES,
    CorruptStoreError,
    EpisodeInfo,
    check_json,
)


@dataclass
class LiveEpisode:
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
class Orphan:
    """A dead writer's unfinished episode, as a reader sees it before anyone recovers it."""

    info: EpisodeInfo
    lowdim: dict[str, np.ndarray]


class StoreWriter:
    """Appending and recovery for :class:`~robot_rl.data.episode_store.EpisodeStore`, which
    inherits them and owns the state they share (set up when the store is opened)."""

    path: Path
    spec: StoreSpec
    mode: str
    _root: zarr.Group
    _lock_fd: int | None
    _live: LiveEpisode | None
    _arrays: dict[tuple[str, str], zarr.Array]
    _capacity: dict[tuple[str, str], int]
    _episodes: list[EpisodeInfo]

    # ------------------------------------------------------------------ writing

    def begin_episode(self, first_obs: Mapping[str, Any], *, source: str = "online", task: str = "",
                      config_hash: str = "", **attrs: Any) -> None:
        """Start an episode at its first observation; ``attrs`` is any JSON (kept in the index)."""
        self._require_writer()
        if self._live is not None:
            raise RuntimeError("an episode is already running; call end_episode first")
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        clash = sorted(RESERVED_ATTRS & set(attrs))
        if clash:
            raise ValueError(f"attribute(s) {clash} are index fields; pass them by their keyword")
        check_json("episode attributes", attrs)
        obs = self.spec.validate_obs(first_obs)
        obs_start, step_start = self._committed_end()
        self._write_images(obs_start, obs)
        header = {"obs_start": obs_start, "step_start": step_start,
                  "attrs": {"source": source, "task": task, "config_hash": config_hash, "attrs": attrs,
                            "begin_time": time.time()}}
        journal = EpisodeJournal(self.path / JOURNAL_FILE, self.spec, header, obs)
        self._live = LiveEpisode(obs_start, step_start, header["attrs"], journal,
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
        clash = sorted(RESERVED_ATTRS & set(attrs))
        if clash:
            raise ValueError(f"attribute(s) {clash} are index fields; pass them by their keyword")
        labels = tuple(labels)
        if not all(isinstance(x, str) for x in labels):
            raise ValueError(f"labels must be strings, got {labels!r}")
        check_json("episode attributes", attrs)
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
            (self.path / JOURNAL_FILE).unlink()
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
        new = max(rows, 2 * arr.shape[0], GROW_MIN)
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

    def _read_orphan(self) -> Orphan | None:
        contents = read_journal(self.path / JOURNAL_FILE, self.spec)
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
        return Orphan(info, lowdim)

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
                (self.path / JOURNAL_FILE).unlink()
        for stale in self.path.rglob("*.partial"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        with contextlib.suppress(FileNotFoundError):
            (self.path / (JOURNAL_FILE + ".tmp")).unlink()
