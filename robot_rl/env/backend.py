"""The backend seam under :class:`RobotEnv`: sim, direct drivers and ROS all fit here."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from robot_rl.drivers.base import Arm, Camera, Gripper


class RobotBackend(ABC):
    """A set of drivers plus the one thing that differs between sim and hardware: time.

    The simulator must be stepped, so :meth:`advance` integrates physics. On hardware
    time passes by itself and the actor's loop paces the control rate, so hardware
    backends return from :meth:`advance` at once.
    """

    arm: Arm
    gripper: Gripper | None
    cameras: dict[str, Camera]

    @abstractmethod
    def reset(self, rng: np.random.Generator) -> None:
        """Bring the robot to a start pose drawn around its home pose."""

    @abstractmethod
    def advance(self, duration: float) -> None:
        """Let ``duration`` seconds of robot time pass after a command."""

    def close(self) -> None:
        for camera in self.cameras.values():
            camera.close()
        self.arm.close()
        if self.gripper is not None:
            self.gripper.close()
