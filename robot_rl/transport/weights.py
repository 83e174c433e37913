"""Policy weights ⇄ a stream of ~1 MB chunks, so a large policy never travels as one huge message.

The learner chunks a state dict once when it publishes it; every actor that asks gets the same
chunks. The actor writes each slice straight into a preallocated array, so reassembly costs
one copy and a truncated or inconsistent stream is refused rather than half-loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from robot_rl.transport import robot_rl_transport_pb2 as pb
from robot_rl.transport.arrays import WIRE_DTYPES, ArrayLimits, checked_header
from robot_rl.transport.errors import MalformedMessage

CHUNK_BYTES = 1 << 20
# Weights come from the learner the actor chose to trust, so allow big layers, but still bounded.
WEIGHT_LIMITS = ArrayLimits(max_array_bytes=4 << 30, max_arrays=100_000)


def chunk_weights(version: int, arrays: Mapping[str, np.ndarray], chunk_bytes: int = CHUNK_BYTES
                  ) -> list[pb.WeightsChunk]:
    """Chunks of at most ``chunk_bytes`` of array data each; small arrays share a chunk."""
    contiguous = {}
    for name, value in arrays.items():
        array = np.asarray(value)
        wire = WIRE_DTYPES.get(array.dtype.name)
        if wire is None:
            raise ValueError(f"weight {name!r}: dtype {array.dtype} is not one of {sorted(WIRE_DTYPES)}")
        contiguous[name] = np.asarray(array, dtype=wire, order="C")  # not ascontiguousarray: it turns 0-d into 1-d
    count = len(contiguous)
    chunks = [pb.WeightsChunk(version=version, array_count=count)]
    room = chunk_bytes
    for name, array in contiguous.items():
        data = array.reshape(-1).view(np.uint8)
        offset = 0
        while True:
            if room == 0:
                chunks.append(pb.WeightsChunk(version=version, array_count=count))
                room = chunk_bytes
            piece = data[offset:offset + room]
            chunks[-1].slices.append(pb.ArraySlice(
                array=pb.Array(name=name, dtype=array.dtype.name, shape=array.shape, data=piece.tobytes()),
                offset=offset))
            offset += len(piece)
            room -= len(piece)
            if offset >= len(data):
                break
    return chunks


@dataclass
class _PartialArray:
    array: np.ndarray
    buffer: np.ndarray  # the array's bytes, as a flat uint8 view
    received: int = 0


class WeightsAssembler:
    """Collects one version's chunks into whole arrays, checking that they fit together."""

    def __init__(self, limits: ArrayLimits = WEIGHT_LIMITS) -> None:
        self.limits = limits
        self.version: int | None = None
        self.array_count: int | None = None
        self._partial: dict[str, _PartialArray] = {}

    def add(self, chunk: pb.WeightsChunk) -> None:
        if self.version is None:
            if chunk.array_count > self.limits.max_arrays:
                raise MalformedMessage(f"{chunk.array_count} weight arrays, at most {self.limits.max_arrays}")
            self.version, self.array_count = chunk.version, chunk.array_count
        elif (chunk.version, chunk.array_count) != (self.version, self.array_count):
            raise MalformedMessage(f"chunk of version {chunk.version} ({chunk.array_count} arrays) in a stream of "
                                   f"version {self.version} ({self.array_count} arrays)")
        for piece in chunk.slices:
            self._add_slice(piece)

    def _add_slice(self, piece: pb.ArraySlice) -> None:
        msg = piece.array
        dtype, shape, nbytes = checked_header(msg, self.limits)
        partial = self._partial.get(msg.name)
        if partial is None:
            if len(self._partial) >= (self.array_count or 0):
                raise MalformedMessage(f"more arrays than the {self.array_count} announced")
            array = np.empty(shape, dtype=dtype)
            partial = _PartialArray(array, array.reshape(-1).view(np.uint8))
            self._partial[msg.name] = partial
        elif partial.array.dtype != dtype or partial.array.shape != shape:
            raise MalformedMessage(f"weight {msg.name!r}: slices disagree on dtype/shape")
        data = msg.data
        if piece.offset != partial.received or partial.received + len(data) > nbytes:
            raise MalformedMessage(f"weight {msg.name!r}: slice at byte {piece.offset} of length {len(data)}, "
                                   f"expected byte {partial.received} of {nbytes}")
        partial.buffer[partial.received:partial.received + len(data)] = np.frombuffer(data, dtype=np.uint8)
        partial.received += len(data)

    def result(self) -> tuple[int, dict[str, np.ndarray]]:
        """(version, arrays) once every announced array is complete; MalformedMessage otherwise."""
        if self.version is None:
            raise MalformedMessage("no weight chunks received")
        incomplete = [name for name, p in self._partial.items() if p.received != p.array.nbytes]
        if len(self._partial) != self.array_count or incomplete:
            raise MalformedMessage(f"weights version {self.version} incomplete: {len(self._partial)} of "
                                   f"{self.array_count} arrays started, unfinished: {incomplete[:5]}")
        for name, p in self._partial.items():
            if p.array.dtype.kind == "b" and p.buffer.max(initial=0) > 1:
                raise MalformedMessage(f"weight {name!r}: bool bytes other than 0 and 1")
        arrays = {name: p.array.astype(p.array.dtype.newbyteorder("="), copy=False)
                  for name, p in self._partial.items()}
        return self.version, arrays
