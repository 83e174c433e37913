"""numpy arrays ⇄ ``Array`` messages: explicit dtype, shape and little-endian bytes, never pickle.

Decoding treats every message as untrusted: it checks the dtype against a whitelist, the shape
and the byte length before numpy sees the data, so a bad actor gets a clear refusal instead of
a crash or a silently reinterpreted buffer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from robot_rl.transport import robot_rl_transport_pb2 as pb
from robot_rl.transport.errors import MalformedMessage

# Wire names → little-endian numpy dtypes. Nothing with objects, strings or structure in it.
WIRE_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(name).newbyteorder("<")
    for name in ("uint8", "int8", "int32", "int64", "float16", "float32", "float64", "bool")
}


@dataclass(frozen=True)
class ArrayLimits:
    """What one received message may ask the receiver to allocate."""

    max_array_bytes: int = 64 << 20
    max_ndim: int = 32
    max_arrays: int = 1024
    max_name_length: int = 256


DEFAULT_LIMITS = ArrayLimits()

def encode_array(name: str, value: np.ndarray) -> pb.Array:
    """One array as a message; raises ValueError for dtypes off the whitelist (say so at the sender)."""
    array = np.asarray(value)
    wire = WIRE_DTYPES.get(array.dtype.name)
    if wire is None:
        raise ValueError(f"array {name!r}: dtype {array.dtype} is not one of {sorted(WIRE_DTYPES)}")
    array = np.asarray(array, dtype=wire, order="C")  # not ascontiguousarray: it turns 0-d into 1-d
    return pb.Array(name=name, dtype=array.dtype.name, shape=array.shape, data=array.tobytes())


def encode_arrays(arrays: Mapping[str, np.ndarray]) -> list[pb.Array]:
    return [encode_array(name, value) for name, value in arrays.items()]


def checked_header(msg: pb.Array, limits: ArrayLimits) -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, shape, byte size) of an array message whose header passes the limits."""
    if not msg.name or len(msg.name) > limits.max_name_length:
        raise MalformedMessage(f"array name must be 1..{limits.max_name_length} characters, got {len(msg.name)}")
    dtype = WIRE_DTYPES.get(msg.dtype)
    if dtype is None:
        raise MalformedMessage(f"array {msg.name!r}: dtype {msg.dtype!r} is not one of {sorted(WIRE_DTYPES)}")
    shape = tuple(msg.shape)
    if len(shape) > limits.max_ndim:
        raise MalformedMessage(f"array {msg.name!r}: {len(shape)} dimensions, at most {limits.max_ndim}")
    if any(n < 0 for n in shape):
        raise MalformedMessage(f"array {msg.name!r}: negative dimension in shape {shape}")
    nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow on hostile shapes
    if nbytes > limits.max_array_bytes:
        raise MalformedMessage(f"array {msg.name!r}: {nbytes} bytes, at most {limits.max_array_bytes}")
    return dtype, shape, nbytes


def decode_array(msg: pb.Array, limits: ArrayLimits = DEFAULT_LIMITS) -> np.ndarray:
    dtype, shape, nbytes = checked_header(msg, limits)
    data = msg.data
    if len(data) != nbytes:
        raise MalformedMessage(f"array {msg.name!r}: {len(data)} bytes of data, shape {shape} of {dtype.name} "
                               f"needs {nbytes}")
    flat = np.frombuffer(data, dtype=dtype)
    if dtype.kind == "b" and flat.view(np.uint8).max(initial=0) > 1:
        raise MalformedMessage(f"array {msg.name!r}: bool bytes other than 0 and 1")
    # A writable copy in native byte order: receivers may hand it to torch or modify it in place.
    return flat.reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def decode_arrays(msgs: Iterable[pb.Array], limits: ArrayLimits = DEFAULT_LIMITS) -> dict[str, np.ndarray]:
    """Arrays by name; raises MalformedMessage on the first array that breaks the contract."""
    arrays: dict[str, np.ndarray] = {}
    for msg in msgs:
        if len(arrays) >= limits.max_arrays:
            raise MalformedMessage(f"more than {limits.max_arrays} arrays in one message")
        if msg.name in arrays:
            raise MalformedMessage(f"array {msg.name!r} appears twice")
        arrays[msg.name] = decode_array(msg, limits)
    return arrays
