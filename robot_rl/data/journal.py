"""Append-only, checksummed log of the running episode's low-dimensional data.

Why it exists: low-dim keys (state, action, reward, flags) pack many steps into one zarr chunk,
so committing each step through zarr would rewrite a chunk and a dozen metadata files per step.
Instead each step is one fixed-size record appended with a single ``write`` (plus a CRC), and
the whole episode goes into the zarr arrays once, at its end. A record is the step's commit:
a torn last record fails its CRC and is ignored, so a kill loses at most the step in flight.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl.data.spec import StoreSpec
from robot_rl.files import atomic_write_bytes

_MAGIC = b"RRLJ"
_JOURNAL_VERSION = 1
_HEAD = struct.Struct("<4sI")  # magic, length of the JSON header
_CRC = struct.Struct("<I")


def record_dtype(spec: StoreSpec) -> np.dtype:
    """One step: its index, every step key, and the low-dim keys of the observation it led to."""
    fields: list[tuple[Any, ...]] = [("index", "<u4")]
    fields += [(f"s.{k}", np.dtype(s.dtype).newbyteorder("<"), s.shape) for k, s in spec.steps.items()]
    return np.dtype(fields + obs_dtype(spec).descr)


def obs_dtype(spec: StoreSpec) -> np.dtype:
    """The low-dim keys of one observation (images live in zarr, one chunk per frame)."""
    keys = spec.lowdim_obs_keys
    return np.dtype([(f"o.{k}", np.dtype(spec.obs[k].dtype).newbyteorder("<"), spec.obs[k].shape) for k in keys])


@dataclass
class JournalContents:
    """What survived of a journal: its header and the steps whose records are intact."""

    header: dict[str, Any]
    first_obs: dict[str, np.ndarray]
    steps: dict[str, np.ndarray]
    next_obs: dict[str, np.ndarray]

    @property
    def length(self) -> int:
        return len(next(iter(self.steps.values())))


class EpisodeJournal:
    """Writer side: the header is published by an atomic rename, records by single appends."""

    def __init__(self, path: Path, spec: StoreSpec, header: Mapping[str, Any], first_obs: Mapping[str, np.ndarray]):
        self.path = path
        self._record = record_dtype(spec)
        self._count = 0
        first = np.zeros((), dtype=obs_dtype(spec))
        for key in spec.lowdim_obs_keys:
            first[f"o.{key}"] = first_obs[key]
        body = dict(header, version=_JOURNAL_VERSION, record=self._record.descr.__repr__(),
                    first_obs=base64.b64encode(first.tobytes()).decode())
        payload = json.dumps(body).encode()
        blob = _HEAD.pack(_MAGIC, len(payload)) + payload + _CRC.pack(zlib.crc32(payload))
        atomic_write_bytes(path, blob, fsync=False)  # like its appends: a step's cost stays a write
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._spec = spec

    def append(self, step: Mapping[str, np.ndarray], next_obs: Mapping[str, np.ndarray]) -> None:
        rec = np.zeros((), dtype=self._record)
        rec["index"] = self._count
        for key, value in step.items():
            rec[f"s.{key}"] = value
        for key in self._spec.lowdim_obs_keys:
            rec[f"o.{key}"] = next_obs[key]
        data = rec.tobytes()
        os.write(self._fd, data + _CRC.pack(zlib.crc32(data)))
        self._count += 1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_journal(path: Path, spec: StoreSpec) -> JournalContents | None:
    """Parse a journal; None when its header is unreadable (it never is after a kill: the header
    only appears by rename). Records are kept up to the first torn or out-of-order one."""
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        return None
    if len(blob) < _HEAD.size:
        return None
    magic, n = _HEAD.unpack_from(blob)
    if magic != _MAGIC or len(blob) < _HEAD.size + n + _CRC.size:
        return None
    payload = blob[_HEAD.size : _HEAD.size + n]
    (crc,) = _CRC.unpack_from(blob, _HEAD.size + n)
    if crc != zlib.crc32(payload):
        return None
    header = json.loads(payload)
    record = record_dtype(spec)
    if header.get("version") != _JOURNAL_VERSION or header.get("record") != record.descr.__repr__():
        raise ValueError(f"journal {path} was written with a different layout; cannot recover it")
    first = np.frombuffer(base64.b64decode(header["first_obs"]), dtype=obs_dtype(spec), count=1)[0]
    size = record.itemsize + _CRC.size
    body = memoryview(blob)[_HEAD.size + n + _CRC.size :]
    count = 0
    while (count + 1) * size <= len(body):
        chunk = body[count * size : (count + 1) * size]
        (crc,) = _CRC.unpack_from(chunk, record.itemsize)
        if crc != zlib.crc32(chunk[: record.itemsize]):
            break
        if int(np.frombuffer(chunk[:4], dtype="<u4")[0]) != count:
            break
        count += 1
    records = np.frombuffer(body[: count * size], dtype=np.dtype({"names": ["r"], "formats": [record],
                                                                  "itemsize": size}))["r"]
    steps = {k: np.array(records[f"s.{k}"], dtype=s.dtype) for k, s in spec.steps.items()}
    next_obs = {k: np.array(records[f"o.{k}"], dtype=spec.obs[k].dtype) for k in spec.lowdim_obs_keys}
    first_obs = {k: np.array(first[f"o.{k}"], dtype=spec.obs[k].dtype) for k in spec.lowdim_obs_keys}
    return JournalContents(header, first_obs, steps, next_obs)
