"""The three interfaces every robot backend is built from.

A driver owns one device. It reports what the device measured with the time it was
measured, and takes commands; it never decides what to command. Direct mode uses drivers
in-process, the ROS nodes wrap the same classes, and the simulator implements them too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation


@dataclass(frozen=True)
class Frame:
    """One camera image: uint8 H×W×3 RGB, and the capture time in seconds."""

    image: np.ndarray
    stamp: float


@dataclass(frozen=True)
class CameraInfo:
    """Pinhole intrinsics, as in ``sensor_msgs/CameraInfo`` (no distortion means zeros)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    frame_id: str
    distortion: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    @property
    def k(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class ArmState:
    """Joint angles and rates, end-effector pose (x, y, z, qw, qx, qy, qz; base frame),
    contact wrench at the tool (fx, fy, fz, tx, ty, tz; base frame) and measurement time."""

    q: np.ndarray
    dq: np.ndarray
    ee_pose: np.ndarray
    wrench: np.ndarray
    stamp: float


def moved_pose(pose: np.ndarray, dpos: np.ndarray, drot: np.ndarray) -> np.ndarray:
    """The pose (x, y, z, qw, qx, qy, qz) that ``pose`` reaches by a base-frame move: ``dpos``
    metres and a rotation vector ``drot`` (rad) applied about the base axes."""
    pose = np.asarray(pose, dtype=float)
    rotation = Rotation.from_rotvec(drot) * Rotation.from_quat(pose[3:], scalar_first=True)
    return np.concatenate([pose[:3] + dpos, rotation.as_quat(scalar_first=True)])


@dataclass(frozen=True)
class GripperState:
    """Opening between the fingers in metres, and measurement time."""

    width: float
    stamp: float


class Camera(ABC):
    name: str

    @abstractmethod
    def read(self) -> Frame:
        """The newest frame. Raises if the camera is gone, never returns a stale frame silently."""

    @abstractmethod
    def info(self) -> CameraInfo: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the device."""


class Arm(ABC):
    """One arm. Besides its commands, a driver declares what it can do, so that the safety
    chain checks it when it starts (one line, never at run time):

    ``takes_joint_commands``: :meth:`command_joints` moves the arm. A driver that cannot
    says False, and its :meth:`command_joints` raises :class:`UnsupportedCommand`.

    ``senses_force``: ``ArmState.wrench`` is a measurement. A driver without a force sensor
    reports zeros there and says False; the safety chain then refuses a contact limit (a
    limits file must say ``contact: none`` to run such an arm).

    Both default to False: a driver that does not say gets the safe answer.
    """

    takes_joint_commands: bool = False
    senses_force: bool = False

    @property
    def label(self) -> str:
        """The arm in a few words, for one-line errors (``UR arm at 192.0.2.10``)."""
        return type(self).__name__

    @abstractmethod
    def state(self) -> ArmState: ...

    @abstractmethod
    def command(self, target: np.ndarray) -> None:
        """Move towards an end-effector target pose (x, y, z, qw, qx, qy, qz; base frame)."""

    @abstractmethod
    def command_joints(self, q: np.ndarray) -> None:
        """Move towards joint targets ``q`` (rad, one per joint in the arm's order)."""

    @abstractmethod
    def stop(self) -> None:
        """Hold the current pose. Never clears a robot fault."""

    @property
    @abstractmethod
    def home_pose(self) -> np.ndarray:
        """The end-effector pose episodes start from."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the device."""


def joint_targets(q: np.ndarray, n: int, arm: str) -> np.ndarray:
    """``q`` as ``n`` finite floats, or a ValueError naming the arm."""
    q = np.asarray(q, dtype=float)
    if q.shape != (n,) or not np.all(np.isfinite(q)):
        raise ValueError(f"{arm}: joint targets must be {n} finite numbers (rad), got {q.tolist()}")
    return q


class Gripper(ABC):
    max_width: float

    @abstractmethod
    def state(self) -> GripperState: ...

    @abstractmethod
    def command(self, width: float) -> None:
        """Move the fingers to ``width`` metres apart (0 closes, ``max_width`` opens fully)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the device."""


class DriverError(RuntimeError):
    """A device that is missing, gone or faulted, or an SDK that is not installed; one clear line."""


class UnsupportedCommand(DriverError):
    """A command the arm cannot take (joint targets to a driver without them); one clear line."""


def import_sdk(module: str, install: str, driver: str):
    """The vendor SDK module, or a DriverError that says how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise DriverError(f"the {driver} driver needs the Python module {module!r} ({install}): {e}") from None
