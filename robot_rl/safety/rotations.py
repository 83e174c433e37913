"""Quaternion ⇄ roll/pitch/yaw on plain floats: the safety chain's hot path.

scipy's Rotation costs tens of microseconds per call on one rotation; these cost about
one. Conventions: quaternions are (w, x, y, z); roll, pitch and yaw are intrinsic
z-y'-x'' angles, R = Rz(yaw) · Ry(pitch) · Rx(roll), with pitch in [-π/2, π/2].
"""

from __future__ import annotations

import math

TAU = 2.0 * math.pi
GIMBAL_LOCK = 1.0 - 1e-14  # |sin(pitch)| from which pitch is taken as exactly ±π/2


def quat_to_rpy(w: float, x: float, y: float, z: float) -> tuple[float, float, float]:
    """Roll, pitch, yaw of a unit quaternion (pitch in [-π/2, π/2], roll and yaw in (-π, π])."""
    s = 2.0 * (w * y - z * x)
    if abs(s) >= GIMBAL_LOCK:  # pitch ±π/2: only roll ∓ yaw is defined, and the formulas below are 0/0
        return 2.0 * math.atan2(x, w), math.copysign(math.pi / 2, s), 0.0
    roll = math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    pitch = math.asin(s)
    yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return roll, pitch, yaw


def rpy_to_quat(roll: float, pitch: float, yaw: float) -> tuple[float, float, float, float]:
    """The unit quaternion (w, x, y, z) of roll, pitch, yaw, with w >= 0."""
    cr, sr = math.cos(0.5 * roll), math.sin(0.5 * roll)
    cp, sp = math.cos(0.5 * pitch), math.sin(0.5 * pitch)
    cy, sy = math.cos(0.5 * yaw), math.sin(0.5 * yaw)
    w = cr * cp * cy + sr * sp * sy
    x = sr * cp * cy - cr * sp * sy
    y = cr * sp * cy + sr * cp * sy
    z = cr * cp * sy - sr * sp * cy
    return (w, x, y, z) if w >= 0.0 else (-w, -x, -y, -z)


def quat_angle(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """The rotation angle between two unit quaternions (radians, in [0, π])."""
    dot = abs(a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3])
    return 2.0 * math.acos(min(1.0, dot))
