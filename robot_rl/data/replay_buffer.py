"""Replay memory for off-policy learning: uint8 frames stored once, in RAM or on a torch device.

Every observation occupies one *slot* of a ring. A slot also holds the step taken from that
observation, and ``next_slot`` points at the observation the step led to; an episode of N steps
takes N+1 slots and its last slot holds no transition. So no frame is stored twice (memory per
step ≈ (N+1)/N frames), a transition never spans two episodes, and time-limit truncations
keep their next observation for bootstrapping.

Eviction overwrites the oldest slot first. A transition becomes valid in the same locked call
that writes its next observation, and points forward in ring order; so by the time a slot is
the oldest, every transition that pointed at it has been evicted (and invalidated) already,
and a sampled transition never has an evicted next observation.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

from robot_rl.data.episode_store import EpisodeStore
from robot_rl.data.spec import REQUIRED_STEP_KEYS, StoreSpec

Batch = dict[str, Any]


def _torch_dtype(dtype: str) -> torch.dtype:
    return torch.from_numpy(np.zeros(0, dtype=dtype)).dtype


class ReplayBuffer:
    """A capacity-bounded ring of transitions; thread-safe ``add_*`` and ``sample``.

    ``device=None`` keeps the data in numpy arrays (RAM) and returns numpy batches; a torch
    device (``"cuda"``, ``"cpu"``) keeps it in torch tensors there and returns tensors on it.
    """

    def __init__(self, spec: StoreSpec, capacity: int, *, device: str | torch.device | None = None):
        if capacity < 2:
            raise ValueError(f"capacity must be at least 2 slots, got {capacity}")
        self.spec = spec
        self.capacity = int(capacity)
        self.device = torch.device(device) if device is not None else None
        self._lock = threading.Lock()
        self._obs = {k: self._alloc((self.capacity, *s.shape), s.dtype) for k, s in spec.obs.items()}
        self._steps = {k: self._alloc((self.capacity, *s.shape), s.dtype) for k, s in spec.steps.items()}
        self._valid = np.zeros(self.capacity, dtype=bool)
        self._next_slot = np.zeros(self.capacity, dtype=np.int64)
        self._num_valid = 0
        self._cursor = 0  # next slot to write
        self._size = 0  # slots written so far, at most capacity
        self._open_slot: int | None = None  # the running live episode's latest observation
        self._open_slot_evicted = False  # a bulk add wrapped the ring over it

    def _alloc(self, shape: tuple[int, ...], dtype: str, *, zeroed: bool = True) -> Any:
        if self.device is None:
            return np.zeros(shape, dtype=dtype) if zeroed else np.empty(shape, dtype=dtype)
        make = torch.zeros if zeroed else torch.empty
        return make(shape, dtype=_torch_dtype(dtype), device=self.device)

    # ------------------------------------------------------------------ sizes

    def __len__(self) -> int:
        """Transitions that can be sampled now."""
        return self._num_valid

    @property
    def nbytes(self) -> int:
        """Memory held by the buffer, all of it allocated up front."""
        arrays = [*self._obs.values(), *self._steps.values()]
        data = sum(a.nbytes if isinstance(a, np.ndarray) else a.numel() * a.element_size() for a in arrays)
        return int(data + self._valid.nbytes + self._next_slot.nbytes)

    def obs_column(self, key: str) -> Any:
        """The storage of observation ``key``: every slot's value, ``capacity`` rows, a numpy array
        (a tensor on ``device``). The buffer's own memory, not a copy: for reading only (the
        replay benchmark gathers from it to compare with :meth:`sample`)."""
        return self._obs[key]

    # ------------------------------------------------------------------ adding

    def begin_episode(self, obs: Mapping[str, Any]) -> None:
        """Start a live episode at its first observation."""
        values = self.spec.validate_obs(obs)
        with self._lock:
            if self._open_slot is not None:
                raise RuntimeError("a live episode is already running; call end_episode first")
            slot = self._claim_slots(1)[0]
            self._write_obs(slot, 1, {k: v[None] for k, v in values.items()})
            self._open_slot, self._open_slot_evicted = slot, False

    def add_step(self, *, obs: Mapping[str, Any], **fields: Any) -> None:
        """Append one step of the live episode and the observation it led to."""
        step = self.spec.validate_step(fields)
        next_obs = self.spec.validate_obs(obs)
        with self._lock:
            slot = self._open_slot
            if slot is None:
                raise RuntimeError("no live episode; call begin_episode first")
            nxt = self._claim_slots(1)[0]
            self._write_obs(nxt, 1, {k: v[None] for k, v in next_obs.items()})
            if not self._open_slot_evicted:  # else the step's start frame is gone: drop the step
                self._write_steps(slot, 1, {k: v[None] for k, v in step.items()})
                self._next_slot[slot] = nxt
                self._valid[slot] = True
                self._num_valid += 1
            self._open_slot, self._open_slot_evicted = nxt, False

    def end_episode(self) -> None:
        """Close the live episode; its last observation stays as the final next observation."""
        with self._lock:
            self._open_slot, self._open_slot_evicted = None, False

    def add_episode(self, episode: Mapping[str, Any], step_mask: np.ndarray | None = None) -> int:
        """Add a whole episode (as :meth:`EpisodeStore.load_episode` returns it); return transitions added.

        ``step_mask`` keeps only some steps, e.g. the intervention steps that also go to the demo
        buffer: each run of kept steps becomes its own segment with its own final observation.
        """
        obs, steps, length = self._check_episode(episode)
        if step_mask is None:
            runs = [(0, length)] if length else []
        else:
            mask = np.asarray(step_mask, dtype=bool)
            if mask.shape != (length,):
                raise ValueError(f"step_mask has shape {mask.shape}, the episode has {length} steps")
            edges = np.flatnonzero(np.diff(np.concatenate([[False], mask, [False]]).astype(np.int8)))
            runs = list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
        added = 0
        for a, b in runs:
            added += self._add_segment({k: v[a : b + 1] for k, v in obs.items()},
                                       {k: v[a:b] for k, v in steps.items()})
        return added

    def _check_episode(self, episode: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], int]:
        obs = episode.get("obs")
        if not isinstance(obs, Mapping) or set(obs) != set(self.spec.obs):
            raise ValueError(f"episode['obs'] must have exactly the keys {sorted(self.spec.obs)}")
        length = len(episode["action"]) if "action" in episode else -1
        for key, spec in self.spec.obs.items():
            value = np.asarray(obs[key])
            if value.dtype != np.dtype(spec.dtype) or value.shape != (length + 1, *spec.shape):
                raise ValueError(f"obs[{key!r}]: got {value.dtype}{value.shape}, "
                                 f"want {spec.dtype}{(length + 1, *spec.shape)}")
        unknown = sorted(set(episode) - set(self.spec.steps) - {"obs"})
        if unknown:
            raise ValueError(f"episode key(s) {unknown} are not in the spec")
        steps = {}
        for key, spec in self.spec.steps.items():
            if key not in episode:
                if key in REQUIRED_STEP_KEYS:
                    raise ValueError(f"episode is missing the step key {key!r}")
                fill = episode["action"] if key == "policy_action" else np.zeros((length, *spec.shape), spec.dtype)
                steps[key] = np.asarray(fill, dtype=spec.dtype)
                continue
            value = np.asarray(episode[key])
            if value.dtype != np.dtype(spec.dtype) or value.shape != (length, *spec.shape):
                raise ValueError(f"{key}: got {value.dtype}{value.shape}, want {spec.dtype}{(length, *spec.shape)}")
            steps[key] = value
        return dict(obs), steps, length

    def _add_segment(self, obs: Mapping[str, np.ndarray], steps: Mapping[str, np.ndarray]) -> int:
        n_obs = len(next(iter(obs.values())))
        if n_obs > self.capacity:  # only the newest part fits; the head would be evicted at once
            cut = n_obs - self.capacity
            obs = {k: v[cut:] for k, v in obs.items()}
            steps = {k: v[cut:] for k, v in steps.items()}
            n_obs = self.capacity
        n_steps = n_obs - 1
        with self._lock:
            slots = self._claim_slots(n_obs)
            first = int(slots[0])
            self._write_obs(first, n_obs, obs)
            self._write_steps(first, n_steps, steps)
            self._next_slot[slots[:-1]] = slots[1:]
            self._valid[slots[:-1]] = True
            self._num_valid += n_steps
        return n_steps

    def _claim_slots(self, count: int) -> np.ndarray:
        """Take the next ``count`` slots, evicting the oldest data; called with the lock held."""
        slots = (self._cursor + np.arange(count)) % self.capacity
        if self._open_slot is not None and np.any(slots == self._open_slot):
            self._open_slot_evicted = True
        self._num_valid -= int(np.count_nonzero(self._valid[slots]))
        self._valid[slots] = False
        self._cursor = (self._cursor + count) % self.capacity
        self._size = min(self._size + count, self.capacity)
        return slots

    def _ring_pieces(self, start: int, count: int) -> list[tuple[slice, slice]]:
        """(buffer rows, source rows) in at most two contiguous copies, for a write that may wrap."""
        first = min(count, self.capacity - start)
        pieces = [(slice(start, start + first), slice(0, first))]
        if count > first:
            pieces.append((slice(0, count - first), slice(first, count)))
        return pieces

    def _write(self, columns: Mapping[str, Any], start: int, count: int, values: Mapping[str, np.ndarray]) -> None:
        for key, column in columns.items():
            value = values[key]
            for dst, src in self._ring_pieces(start, count):
                if self.device is None:
                    column[dst] = value[src]
                else:
                    column[dst] = torch.as_tensor(np.ascontiguousarray(value[src])).to(self.device)

    def _write_obs(self, start: int, count: int, values: Mapping[str, np.ndarray]) -> None:
        self._write(self._obs, start, count, values)

    def _write_steps(self, start: int, count: int, values: Mapping[str, np.ndarray]) -> None:
        self._write(self._steps, start, count, values)

    # ------------------------------------------------------------------ sampling

    def empty_batch(self, n: int) -> Batch:
        """Preallocated batch to pass as ``out=``: reusing it spares page faults on every sample."""
        def alloc(s: Any) -> Any:
            return self._alloc((n, *s.shape), s.dtype, zeroed=False)

        batch: Batch = {
            "obs": {k: alloc(s) for k, s in self.spec.obs.items()},
            "next_obs": {k: alloc(s) for k, s in self.spec.obs.items()},
        }
        batch.update({k: alloc(s) for k, s in self.spec.steps.items()})
        return batch

    def sample(self, n: int, rng: np.random.Generator, out: Batch | None = None) -> Batch:
        """Draw ``n`` transitions uniformly (with replacement).

        The batch holds ``obs`` and ``next_obs`` dicts and every step key; ``terminated`` is the
        done mask for bootstrapping, ``truncated`` is for information only.
        """
        if out is None:
            out = self.empty_batch(n)
        with self._lock:
            idx = self._sample_slots(n, rng)
            nxt = self._next_slot[idx]
            if self.device is None:
                for key, column in self._obs.items():
                    np.take(column, idx, axis=0, out=out["obs"][key], mode="clip")
                    np.take(column, nxt, axis=0, out=out["next_obs"][key], mode="clip")
                for key, column in self._steps.items():
                    np.take(column, idx, axis=0, out=out[key], mode="clip")
            else:
                idx_t = torch.from_numpy(idx).to(self.device, non_blocking=True)
                nxt_t = torch.from_numpy(nxt).to(self.device, non_blocking=True)
                for key, column in self._obs.items():
                    torch.index_select(column, 0, idx_t, out=out["obs"][key])
                    torch.index_select(column, 0, nxt_t, out=out["next_obs"][key])
                for key, column in self._steps.items():
                    torch.index_select(column, 0, idx_t, out=out[key])
        return out

    def _sample_slots(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self._num_valid == 0:
            raise ValueError("the replay buffer holds no transition to sample")
        if self._num_valid * 2 < self._size:  # mostly boundaries: draw from the valid list
            return rng.choice(np.flatnonzero(self._valid[: self._size]), size=n)
        chosen = np.empty(0, dtype=np.int64)
        while len(chosen) < n:  # rejection: ≥ half the slots are valid, so this rarely loops
            draw = rng.integers(0, self._size, size=2 * (n - len(chosen)) + 8)
            chosen = np.concatenate([chosen, draw[self._valid[draw]]])
        return chosen[:n]

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_stores(cls, paths: str | os.PathLike | Iterable[str | os.PathLike], *,
                    source: str | Iterable[str] | None = None, success: bool | None = None,
                    label: str | None = None, include_incomplete: bool = True, capacity: int | None = None,
                    device: str | torch.device | None = None) -> ReplayBuffer:
        """Load the matching episodes of one or more stores; the buffer can keep taking live steps.

        ``capacity`` defaults to exactly what the selected episodes need.
        """
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        stores = [EpisodeStore.open(p, mode="r") for p in paths]
        if not stores:
            raise ValueError("from_stores needs at least one store path")
        spec = stores[0].spec
        for store in stores[1:]:
            if store.spec != spec:
                raise ValueError(f"{store.path} has a different spec from {stores[0].path}; cannot mix them")
        complete = None if include_incomplete else True
        selected = [(s, e) for s in stores for e in s.episodes(source=source, success=success, label=label,
                                                                complete=complete)]
        needed = sum(e.length + 1 for _, e in selected)
        buffer = cls(spec, capacity if capacity is not None else max(needed, 2), device=device)
        for store, info in selected:
            buffer.add_episode(store.load_episode(info.index))
        return buffer
