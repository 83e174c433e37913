"""Conversions between robot_rl's plain data and ROS 2 messages, without importing ROS.

The same functions serve the rclpy nodes and the rosbags-based bag tools: message classes
come from a ``MessageTypes`` (rclpy's generated ``*.msg`` modules, or a rosbags typestore
with the real Humble/Jazzy definitions), and every message is built with all its fields
as keywords, which both kinds of class accept. The two differ only in how unbounded
arrays are held (``array.array`` in rclpy, numpy in rosbags), so that is the one thing a
``MessageTypes`` decides.

Conventions: images are uint8 H×W×3 RGB (as ``Frame``), or H×W for mono8/16UC1; poses
are (x, y, z, qw, qx, qy, qz) as in ``ArmState`` (ROS orders the quaternion x, y, z, w);
twists and wrenches are 6 floats, linear then angular; stamps are float seconds.
"""

from __future__ import annotations

import array
import importlib
import math
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from robot_rl.drivers.base import CameraInfo


class MessageError(ValueError):
    """A message that does not hold what it claims (encoding, sizes, format)."""


class MessageTypes(Protocol):
    def cls(self, name: str) -> Any:
        """The message class for e.g. ``sensor_msgs/msg/Image``."""

    def sequence(self, values: np.ndarray) -> Any:
        """An unbounded array field (``uint8[]`` or ``float64[]``) as this kind of class holds it."""


class RclpyTypes:
    """Message classes from the installed ROS 2 Python packages (``sensor_msgs.msg`` ...)."""

    def cls(self, name: str) -> Any:
        package, _, message = name.split("/")
        return getattr(importlib.import_module(f"{package}.msg"), message)

    def sequence(self, values: np.ndarray) -> Any:
        typecode = {np.dtype(np.uint8): "B", np.dtype(np.float64): "d"}[values.dtype]
        return array.array(typecode, np.ascontiguousarray(values).tobytes())


class RosbagsTypes:
    """Message classes of a rosbags typestore: the real Humble or Jazzy definitions, no ROS needed."""

    def __init__(self, distro: str = "jazzy"):
        from rosbags.typesys import Stores, get_typestore

        stores = {"humble": Stores.ROS2_HUMBLE, "jazzy": Stores.ROS2_JAZZY}
        if distro not in stores:
            raise ValueError(f"unknown ROS 2 distro {distro!r}; choose one of {sorted(stores)}")
        self.distro = distro
        self.store = get_typestore(stores[distro])

    def cls(self, name: str) -> Any:
        return self.store.types[name]

    def sequence(self, values: np.ndarray) -> Any:
        return np.ascontiguousarray(values)

    def serialize(self, msg: Any) -> bytes:
        return bytes(self.store.serialize_cdr(msg, msg.__msgtype__))

    def deserialize(self, data: bytes, name: str) -> Any:
        return self.store.deserialize_cdr(data, name)


# ---------------------------------------------------------------------------- header
def stamp_to_msg(types: MessageTypes, stamp: float) -> Any:
    if not math.isfinite(stamp) or stamp < 0:
        raise MessageError(f"a stamp must be finite seconds >= 0, got {stamp}")
    sec = math.floor(stamp)
    nanosec = min(round((stamp - sec) * 1e9), 999_999_999)
    return types.cls("builtin_interfaces/msg/Time")(sec=int(sec), nanosec=int(nanosec))


def stamp_from_msg(stamp: Any) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def header(types: MessageTypes, stamp: float, frame_id: str) -> Any:
    return types.cls("std_msgs/msg/Header")(stamp=stamp_to_msg(types, stamp), frame_id=frame_id)


# ---------------------------------------------------------------------------- images
@dataclass(frozen=True)
class _Encoding:
    channels: int
    dtype: np.dtype
    to_rgb: int | None  # cv2 colour conversion to RGB, None: already RGB or not colour


ENCODINGS = {
    "rgb8": _Encoding(3, np.dtype(np.uint8), None),
    "bgr8": _Encoding(3, np.dtype(np.uint8), cv2.COLOR_BGR2RGB),
    "mono8": _Encoding(1, np.dtype(np.uint8), None),
    "16UC1": _Encoding(1, np.dtype(np.uint16), None),
}


def image_to_msg(types: MessageTypes, image: np.ndarray, stamp: float, frame_id: str,
                 encoding: str = "rgb8") -> Any:
    """``sensor_msgs/Image`` from an RGB image (rgb8, bgr8) or a one-channel one (mono8, 16UC1)."""
    enc = _encoding(encoding)
    image = np.asarray(image)
    expected = "H×W×3" if enc.channels == 3 else "H×W"
    if image.dtype != enc.dtype or image.ndim != (3 if enc.channels == 3 else 2) or (
            enc.channels == 3 and image.shape[2] != 3):
        raise MessageError(f"{encoding} needs a {expected} {enc.dtype} image, got {image.shape} {image.dtype}")
    if encoding == "bgr8":
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    height, width = image.shape[:2]
    data = np.ascontiguousarray(image).astype(enc.dtype.newbyteorder("<"), copy=False).view(np.uint8).reshape(-1)
    return types.cls("sensor_msgs/msg/Image")(
        header=header(types, stamp, frame_id), height=height, width=width, encoding=encoding, is_bigendian=0,
        step=width * enc.channels * enc.dtype.itemsize, data=types.sequence(data))


def image_from_msg(msg: Any) -> np.ndarray:
    """The image of a ``sensor_msgs/Image``: RGB H×W×3 for rgb8/bgr8, H×W for mono8/16UC1.

    Rows may be padded (``step`` beyond the pixels); 16-bit data may be big-endian.
    """
    enc = _encoding(msg.encoding)
    pixel = enc.channels * enc.dtype.itemsize
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if step < width * pixel:
        raise MessageError(f"{msg.encoding} image: step {step} is less than width {width} × {pixel} bytes")
    data = np.frombuffer(memoryview(msg.data).cast("B"), dtype=np.uint8)
    if data.size != step * height:
        raise MessageError(f"{msg.encoding} image {width}×{height}: {data.size} data bytes, expected "
                           f"step × height = {step * height}")
    rows = data.reshape(height, step)[:, : width * pixel]
    dtype = enc.dtype.newbyteorder(">" if msg.is_bigendian else "<")
    image = np.ascontiguousarray(rows).view(dtype).astype(enc.dtype)
    image = image.reshape(height, width, enc.channels) if enc.channels == 3 else image.reshape(height, width)
    return cv2.cvtColor(image, enc.to_rgb) if enc.to_rgb is not None else image


def compressed_image_to_msg(types: MessageTypes, image: np.ndarray, stamp: float, frame_id: str,
                            fmt: str = "jpeg", quality: int = 90) -> Any:
    """``sensor_msgs/CompressedImage`` of an RGB image, as image_transport's plugin writes it."""
    if fmt not in ("jpeg", "png"):
        raise MessageError(f"compressed format must be 'jpeg' or 'png', got {fmt!r}")
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise MessageError(f"a compressed image needs an H×W×3 uint8 RGB image, got {image.shape} {image.dtype}")
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpeg" else []
    ok, buf = cv2.imencode(f".{'jpg' if fmt == 'jpeg' else 'png'}", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise MessageError(f"OpenCV could not encode a {image.shape} image as {fmt}")
    return types.cls("sensor_msgs/msg/CompressedImage")(
        header=header(types, stamp, frame_id), format=f"rgb8; {fmt} compressed bgr8",
        data=types.sequence(buf.reshape(-1)))


def compressed_image_from_msg(msg: Any) -> np.ndarray:
    """The RGB image of a ``sensor_msgs/CompressedImage`` (jpeg or png)."""
    fmt = str(msg.format).lower()
    if "jpeg" not in fmt and "jpg" not in fmt and "png" not in fmt:
        raise MessageError(f"compressed image format {msg.format!r} is neither jpeg nor png")
    data = np.frombuffer(memoryview(msg.data).cast("B"), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise MessageError(f"compressed image ({msg.format!r}, {data.size} bytes) could not be decoded")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _encoding(name: str) -> _Encoding:
    if name not in ENCODINGS:
        raise MessageError(f"image encoding {name!r} is not supported; use one of {sorted(ENCODINGS)}")
    return ENCODINGS[name]


# ---------------------------------------------------------------------------- camera info
def camera_info_to_msg(types: MessageTypes, info: CameraInfo, stamp: float) -> Any:
    k = info.k
    p = np.hstack([k, np.zeros((3, 1))])
    return types.cls("sensor_msgs/msg/CameraInfo")(
        header=header(types, stamp, info.frame_id), height=info.height, width=info.width,
        distortion_model="plumb_bob", d=types.sequence(np.asarray(info.distortion, dtype=np.float64)),
        k=k.reshape(-1), r=np.eye(3).reshape(-1), p=p.reshape(-1), binning_x=0, binning_y=0,
        roi=types.cls("sensor_msgs/msg/RegionOfInterest")(x_offset=0, y_offset=0, height=0, width=0,
                                                          do_rectify=False))


def camera_info_from_msg(msg: Any) -> CameraInfo:
    k = np.asarray(msg.k, dtype=np.float64)
    if k.shape != (9,) or not np.all(np.isfinite(k)) or k[0] <= 0 or k[4] <= 0:
        raise MessageError(f"CameraInfo of {msg.header.frame_id!r} has no valid K (fx, fy > 0): {k.tolist()}")
    if msg.width <= 0 or msg.height <= 0:
        raise MessageError(f"CameraInfo of {msg.header.frame_id!r} has size {msg.width}×{msg.height}")
    return CameraInfo(int(msg.width), int(msg.height), float(k[0]), float(k[4]), float(k[2]), float(k[5]),
                      str(msg.header.frame_id), tuple(float(v) for v in msg.d))


# ---------------------------------------------------------------------------- arm
@dataclass(frozen=True)
class JointReading:
    names: tuple[str, ...]
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray
    stamp: float


def joint_state_to_msg(types: MessageTypes, names: list[str] | tuple[str, ...], position: np.ndarray,
                       velocity: np.ndarray | None, effort: np.ndarray | None, stamp: float) -> Any:
    n = len(names)
    arrays = {}
    for field, values in (("position", position), ("velocity", velocity), ("effort", effort)):
        values = np.zeros(0) if values is None else np.asarray(values, dtype=np.float64).reshape(-1)
        if values.size not in (0, n):
            raise MessageError(f"JointState {field} has {values.size} values for {n} joints")
        arrays[field] = types.sequence(values)
    return types.cls("sensor_msgs/msg/JointState")(header=header(types, stamp, ""), name=list(names), **arrays)


def joint_state_from_msg(msg: Any, names: list[str] | tuple[str, ...] | None = None) -> JointReading:
    """Positions, velocities and efforts in the order of ``names`` (default: the message's)."""
    have = list(msg.name)
    values = {f: np.asarray(getattr(msg, f), dtype=np.float64) for f in ("position", "velocity", "effort")}
    for field, v in values.items():
        if v.size not in (0, len(have)):
            raise MessageError(f"JointState {field} has {v.size} values for {len(have)} joints")
    if names is None:
        order = list(range(len(have)))
    else:
        missing = [n for n in names if n not in have]
        if missing:
            raise MessageError(f"JointState has no joint {missing[0]!r} (it has {have})")
        order = [have.index(n) for n in names]
    picked = {f: (v[order] if v.size else np.full(len(order), np.nan)) for f, v in values.items()}
    return JointReading(tuple(have[i] for i in order), picked["position"], picked["velocity"], picked["effort"],
                        stamp_from_msg(msg.header.stamp))


def pose_to_msg(types: MessageTypes, pose: np.ndarray, stamp: float, frame_id: str) -> Any:
    x, y, z, qw, qx, qy, qz = _finite(pose, 7, "pose").tolist()
    msg_types = types.cls
    return msg_types("geometry_msgs/msg/PoseStamped")(
        header=header(types, stamp, frame_id),
        pose=msg_types("geometry_msgs/msg/Pose")(position=msg_types("geometry_msgs/msg/Point")(x=x, y=y, z=z),
                                                 orientation=msg_types("geometry_msgs/msg/Quaternion")(
                                                     x=qx, y=qy, z=qz, w=qw)))


def pose_from_msg(msg: Any) -> np.ndarray:
    """(x, y, z, qw, qx, qy, qz) of a ``PoseStamped``, with the quaternion normalised."""
    p, q = msg.pose.position, msg.pose.orientation
    pose = np.array([p.x, p.y, p.z, q.w, q.x, q.y, q.z], dtype=np.float64)
    norm = np.linalg.norm(pose[3:])
    if not np.all(np.isfinite(pose)) or not 0.5 < norm < 1.5:
        raise MessageError(f"PoseStamped in {msg.header.frame_id!r} is not a pose: {pose.tolist()}")
    pose[3:] /= norm
    return pose


def _vector6_to_msg(types: MessageTypes, kind: str, values: np.ndarray, stamp: float, frame_id: str) -> Any:
    a, b, c, d, e, f = _finite(values, 6, kind).tolist()
    vec = types.cls("geometry_msgs/msg/Vector3")
    inner, (first, second) = {"TwistStamped": ("Twist", ("linear", "angular")),
                              "WrenchStamped": ("Wrench", ("force", "torque"))}[kind]
    body = types.cls(f"geometry_msgs/msg/{inner}")(**{first: vec(x=a, y=b, z=c), second: vec(x=d, y=e, z=f)})
    return types.cls(f"geometry_msgs/msg/{kind}")(header=header(types, stamp, frame_id),
                                                  **{inner.lower(): body})


def twist_to_msg(types: MessageTypes, twist: np.ndarray, stamp: float, frame_id: str) -> Any:
    return _vector6_to_msg(types, "TwistStamped", twist, stamp, frame_id)


def wrench_to_msg(types: MessageTypes, wrench: np.ndarray, stamp: float, frame_id: str) -> Any:
    return _vector6_to_msg(types, "WrenchStamped", wrench, stamp, frame_id)


def twist_from_msg(msg: Any) -> np.ndarray:
    t = msg.twist
    return _finite([t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z], 6, "TwistStamped")


def wrench_from_msg(msg: Any) -> np.ndarray:
    w = msg.wrench
    return _finite([w.force.x, w.force.y, w.force.z, w.torque.x, w.torque.y, w.torque.z], 6, "WrenchStamped")


def _finite(values, n: int, what: str) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64).reshape(-1)
    if out.shape != (n,) or not np.all(np.isfinite(out)):
        raise MessageError(f"{what} needs {n} finite numbers, got {np.asarray(values).tolist()}")
    return out
