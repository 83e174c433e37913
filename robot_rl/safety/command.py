"""The plain data the safety chain passes around: commands, the robot state they are
judged against, and the events that record every intervention."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_rl.drivers.base import ArmState, GripperState
from robot_rl.safety.rotations import quat_to_rpy


@dataclass(frozen=True, slots=True)
class Command:
    """What a source (policy, operator, script) asks of the robot; any part may be absent.

    ``pose`` is an end-effector target (x, y, z, qw, qx, qy, qz; base frame), ``joints``
    joint targets (rad) for arms that take them, ``gripper`` an opening in metres. ``hold``
    asks the arm to stop where it is: always safe, so no filter ever changes a hold.
    Tuples of floats rather than arrays: immutable, and cheap to read element by element.
    """

    pose: tuple[float, ...] | None = None
    joints: tuple[float, ...] | None = None
    gripper: float | None = None
    hold: bool = False

    @staticmethod
    def ee(target: Any, gripper: float | None = None) -> Command:
        """A pose command from anything array-like (no checks: the finite filter does those)."""
        return Command(pose=tuple(np.asarray(target, dtype=float).ravel().tolist()), gripper=gripper)

    @staticmethod
    def joint(q: Any, gripper: float | None = None) -> Command:
        """A joint-target command (rad) from anything array-like (the finite filter checks it)."""
        return Command(joints=tuple(np.asarray(q, dtype=float).ravel().tolist()), gripper=gripper)


HOLD = Command(hold=True)


@dataclass(slots=True)
class SafetyEvent:
    """One intervention: which filter, why, the numbers behind it, and when (robot clock)."""

    filter: str
    reason: str
    values: dict[str, Any] = field(default_factory=dict)
    stamp: float = math.nan

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form, for logs, episode storage and the console."""
        values = {k: (np.asarray(v).tolist() if isinstance(v, np.ndarray | tuple | list) else v)
                  for k, v in self.values.items()}
        return {"filter": self.filter, "reason": self.reason, "values": values, "stamp": self.stamp}


class RobotState:
    """An :class:`ArmState` (and gripper state) unpacked once into floats for all filters.

    Filters read ``pos``, ``quat``, ``rpy``, ``q``, ``dq``, ``force``, ``torque`` and
    ``width`` (None without a gripper); ``finite`` says whether every reading is a number.
    """

    __slots__ = ("arm", "chart_cache", "dq", "finite", "force", "gripper", "pos", "q", "quat", "rpy", "stamp", "torque",
                 "width")

    def __init__(self, arm: ArmState, gripper: GripperState | None = None):
        self.arm, self.gripper = arm, gripper
        pose = np.asarray(arm.ee_pose, dtype=float).tolist()
        wrench = np.asarray(arm.wrench, dtype=float).tolist()
        self.q = tuple(np.asarray(arm.q, dtype=float).tolist())
        self.dq = tuple(np.asarray(arm.dq, dtype=float).tolist())
        self.pos, self.quat = tuple(pose[:3]), tuple(pose[3:7])
        self.force, self.torque = tuple(wrench[:3]), tuple(wrench[3:6])
        self.width = None if gripper is None else float(gripper.width)
        self.stamp = float(arm.stamp)
        self.chart_cache: tuple[tuple[float, ...], tuple[float, float, float]] | None = None  # see filters.chart
        values = (*pose, *wrench, *self.q, *self.dq, 0.0 if self.width is None else self.width)
        self.finite = (len(pose) == 7 and len(wrench) == 6 and len(self.q) == len(self.dq)
                       and math.isfinite(sum(values)))  # NaN, inf and overflow alike
        norm = math.sqrt(sum(v * v for v in self.quat)) if self.finite else 0.0
        self.finite = self.finite and norm > 1e-6
        if self.finite:
            self.quat = tuple(v / norm for v in self.quat)
            self.rpy = quat_to_rpy(*self.quat)
        else:
            self.rpy = (math.nan, math.nan, math.nan)
