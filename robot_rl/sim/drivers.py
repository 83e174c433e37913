"""Drivers for the simulated rig: each wraps a shared :class:`ArmSimulation`."""

from __future__ import annotations

import math

import numpy as np

from robot_rl.drivers.base import (
    Arm,
    ArmState,
    Camera,
    CameraInfo,
    Frame,
    Gripper,
    GripperState,
    joint_targets,
)
from robot_rl.sim.simulation import ARM_JOINTS, GRIPPER_MAX_WIDTH, ArmSimulation, Pose


class SimCamera(Camera):
    def __init__(self, sim: ArmSimulation, name: str, height: int, width: int):
        if name not in sim.camera_names():
            raise ValueError(f"the simulated rig has no camera {name!r}; it has {sim.camera_names()}")
        if height <= 0 or width <= 0:
            raise ValueError(f"camera {name!r}: height and width must be > 0, got {height}×{width}")
        self.sim, self.name, self.height, self.width = sim, name, height, width

    def read(self) -> Frame:
        return Frame(self.sim.render(self.name, self.height, self.width), self.sim.time)

    def info(self) -> CameraInfo:
        # MuJoCo's fovy is the vertical field of view; pixels are square.
        f = 0.5 * self.height / math.tan(math.radians(self.sim.camera_fovy(self.name)) / 2)
        return CameraInfo(self.width, self.height, f, f, (self.width - 1) / 2, (self.height - 1) / 2, self.name)


class SimArm(Arm):
    """The simulated Panda: end-effector targets through the sim's IK, joint targets straight
    to its joint servos; the contact wrench comes from the simulator's contact forces."""

    takes_joint_commands = True
    senses_force = True

    def __init__(self, sim: ArmSimulation):
        self.sim = sim

    @property
    def label(self) -> str:
        return "the simulated arm"

    def state(self) -> ArmState:
        s = self.sim
        return ArmState(s.arm_q(), s.arm_dq(), s.ee_pose().as_array(), s.contact_wrench(), s.time)

    def command(self, target: np.ndarray) -> None:
        target = np.asarray(target, dtype=float)
        if target.shape != (7,) or not np.all(np.isfinite(target)):
            raise ValueError(f"arm target must be 7 finite numbers (x, y, z, qw, qx, qy, qz), got {target}")
        quat = target[3:] / np.linalg.norm(target[3:])
        self.sim.command_ee(Pose(target[:3], quat))

    def command_joints(self, q: np.ndarray) -> None:
        self.sim.command_joints(joint_targets(q, len(ARM_JOINTS), self.label))

    def stop(self) -> None:
        self.sim.hold()

    @property
    def home_pose(self) -> np.ndarray:
        return self.sim.ee_home.as_array()


class SimGripper(Gripper):
    max_width = GRIPPER_MAX_WIDTH

    def __init__(self, sim: ArmSimulation):
        self.sim = sim

    def state(self) -> GripperState:
        return GripperState(self.sim.gripper_width(), self.sim.time)

    def command(self, width: float) -> None:
        if not math.isfinite(width):
            raise ValueError(f"gripper width must be finite, got {width}")
        self.sim.command_gripper(width)
