"""Batch sources built on replay buffers: fixed-proportion mixtures and background prefetching."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import numpy as np
import torch

Batch = dict[str, Any]


class BatchSource(Protocol):
    def sample(self, n: int, rng: np.random.Generator, out: Batch | None = None) -> Batch: ...

    def empty_batch(self, n: int) -> Batch: ...

    def __len__(self) -> int: ...


def slice_batch(batch: Batch, start: int, stop: int) -> Batch:
    """Views of rows ``start:stop`` of every array, so a sub-sampler fills its share in place."""
    return {k: slice_batch(v, start, stop) if isinstance(v, dict) else v[start:stop] for k, v in batch.items()}


def split_counts(n: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split ``n`` in proportion to ``weights``, exactly (largest remainder), so 50/50 of 256 is 128/128."""
    total = sum(weights.values())
    exact = {k: n * w / total for k, w in weights.items()}
    counts = {k: int(np.floor(v)) for k, v in exact.items()}
    by_remainder = sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)
    for k in by_remainder[: n - sum(counts.values())]:
        counts[k] += 1
    return counts


class MixtureSampler:
    """Batches drawn from several buffers in set proportions (RLPD: half online, half demo).

    A buffer that is still empty gives its share to the others, so learning can start on demos
    before the first online step arrives.
    """

    def __init__(self, buffers: Mapping[str, BatchSource], proportions: Mapping[str, float] | None = None):
        if not buffers:
            raise ValueError("a mixture needs at least one buffer")
        proportions = dict(proportions) if proportions is not None else {k: 1.0 for k in buffers}
        if set(proportions) != set(buffers):
            raise ValueError(f"proportions {sorted(proportions)} must name exactly the buffers {sorted(buffers)}")
        if any(p < 0 for p in proportions.values()) or sum(proportions.values()) <= 0:
            raise ValueError(f"proportions must be ≥ 0 and not all 0, got {proportions}")
        first = next(iter(buffers.values()))
        if any(getattr(b, "spec", None) != getattr(first, "spec", None) for b in buffers.values()):
            raise ValueError("all buffers of a mixture must share one spec")
        self.buffers = dict(buffers)
        self.proportions = proportions

    def __len__(self) -> int:
        return sum(len(b) for b in self.buffers.values())

    def empty_batch(self, n: int) -> Batch:
        return next(iter(self.buffers.values())).empty_batch(n)

    def counts(self, n: int) -> dict[str, int]:
        """How many of ``n`` each buffer contributes now."""
        live = {k: p for k, p in self.proportions.items() if p > 0 and len(self.buffers[k]) > 0}
        if not live:
            raise ValueError("every buffer of the mixture is empty")
        counts = dict.fromkeys(self.buffers, 0)
        counts.update(split_counts(n, live))
        return counts

    def sample(self, n: int, rng: np.random.Generator, out: Batch | None = None) -> Batch:
        """Rows come grouped by buffer, in the order the buffers were given."""
        if out is None:
            out = self.empty_batch(n)
        start = 0
        for name, count in self.counts(n).items():
            if count:
                self.buffers[name].sample(count, rng, out=slice_batch(out, start, start + count))
                start += count
        return out


def _to_device(batch: Batch, device: torch.device) -> Batch:
    out: Batch = {}
    for key, value in batch.items():
        if isinstance(value, dict):
            out[key] = _to_device(value, device)
            continue
        tensor = torch.from_numpy(value) if isinstance(value, np.ndarray) else value
        if device.type == "cuda" and tensor.device.type == "cpu":
            tensor = tensor.pin_memory()  # lets the host→device copy run asynchronously
        out[key] = tensor.to(device, non_blocking=True)
    return out


def _map_arrays(batch: Batch, fn: Any) -> Batch:
    return {k: _map_arrays(v, fn) if isinstance(v, dict) else fn(v) for k, v in batch.items()}


def _pinned_host_batch(template: Batch) -> tuple[Batch, Batch]:
    """Page-locked tensors and numpy views of them: the sampler gathers straight into memory the
    GPU can copy from asynchronously, and reusing it spares page faults on every batch."""
    tensors = _map_arrays(template, lambda a: torch.empty(a.shape, dtype=torch.from_numpy(a[:0]).dtype,
                                                          pin_memory=True))
    return _map_arrays(tensors, lambda t: t.numpy()), tensors


class BatchPrefetcher:
    """Iterator of torch batches on the learner's device, sampled ahead by a background thread.

    Sampling and the host→device copy overlap the learner's update. The yielded tensors are the
    learner's to keep (on CUDA they are fresh device tensors; host staging buffers are reused
    only after their copy has finished). Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, source: BatchSource, batch_size: int, *, device: str | torch.device = "cpu",
                 seed: int | None = None, depth: int = 2):
        self.source = source
        self.batch_size = batch_size
        self.device = torch.device(device)
        self._rng = np.random.default_rng(seed)
        self._queue: queue.Queue[Batch | BaseException] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replay-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            staging: list[tuple[Batch, Batch]] = []
            if self.device.type == "cuda":
                template = self.source.empty_batch(self.batch_size)
                if isinstance(template["reward"], np.ndarray):  # a RAM buffer: stage through pinned memory
                    staging = [_pinned_host_batch(template) for _ in range(self._queue.maxsize + 2)]
            copied: list[torch.cuda.Event | None] = [None] * len(staging)
            turn = 0
            while not self._stop.is_set():
                if staging:
                    slot = turn % len(staging)
                    turn += 1
                    if copied[slot] is not None:
                        copied[slot].synchronize()  # the previous copy out of this buffer is done
                    host_arrays, host_tensors = staging[slot]
                    self.source.sample(self.batch_size, self._rng, out=host_arrays)
                    batch = _map_arrays(host_tensors, lambda t: t.to(self.device, non_blocking=True))
                    copied[slot] = torch.cuda.Event()
                    copied[slot].record()
                else:
                    batch = _to_device(self.source.sample(self.batch_size, self._rng), self.device)
                while not self._stop.is_set():
                    try:
                        self._queue.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._queue.put(exc)

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        if self._stop.is_set():
            raise StopIteration
        item = self._queue.get()
        if isinstance(item, BaseException):
            self.close()
            raise RuntimeError("the prefetch thread failed") from item
        return item

    def close(self) -> None:
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=5)

    def __enter__(self) -> BatchPrefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
