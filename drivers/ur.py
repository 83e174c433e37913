"""Universal Robots arms over RTDE (ur_rtde): ``servoL`` towards end-effector targets,
``servoJ`` towards joint targets. The wrench is the controller's TCP force estimate
(``getActualTCPForce``: the e-Series' built-in F/T sensor, the CB3's joint-current estimate).

Faults are surfaced, never cleared: a protective or emergency stop, or a receive stream
that went silent for longer than ``receive_timeout``, makes ``state`` and ``command``
raise :class:`DriverError`, which latches robot_rl's e-stop (SafeArm). Clearing a
protective stop is a person's job on the teach pendant.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from robot_rl.drivers.base import Arm, ArmState, DriverError, import_sdk, joint_targets

JOINTS = 6


def rotvec_pose_to_quat(pose: np.ndarray) -> np.ndarray:
    """UR's (x, y, z, rx, ry, rz) axis-angle pose → (x, y, z, qw, qx, qy, qz)."""
    return np.concatenate([pose[:3], Rotation.from_rotvec(pose[3:]).as_quat(scalar_first=True)])


def quat_pose_to_rotvec(pose: np.ndarray) -> np.ndarray:
    return np.concatenate([pose[:3], Rotation.from_quat(pose[3:], scalar_first=True).as_rotvec()])


class URArm(Arm):
    takes_joint_commands = True
    senses_force = True  # getActualTCPForce

    def __init__(self, host: str, home_pose: np.ndarray, period: float = 0.1, receive_timeout: float = 0.04,
                 speed: float = 0.25, acceleration: float = 1.2, lookahead: float = 0.1, gain: float = 300,
                 control: Any = None, receive: Any = None, clock: Callable[[], float] = time.monotonic):
        if control is None or receive is None:
            rtde_control = import_sdk("rtde_control", "pip install ur-rtde", "ur")
            rtde_receive = import_sdk("rtde_receive", "pip install ur-rtde", "ur")
            try:
                control = control or rtde_control.RTDEControlInterface(host)
                receive = receive or rtde_receive.RTDEReceiveInterface(host)
            except RuntimeError as e:
                raise DriverError(f"UR arm at {host}: RTDE connection failed: {e}") from None
        self.host, self.control, self.receive, self.clock = host, control, receive, clock
        self.period, self.receive_timeout = period, receive_timeout
        self.speed, self.acceleration, self.lookahead, self.gain = speed, acceleration, lookahead, gain
        self._home = np.asarray(home_pose, dtype=float)
        self._last_robot_time: float | None = None
        self._last_change = clock()

    @property
    def label(self) -> str:
        return f"UR arm at {self.host}"

    def _check(self) -> None:
        r = self.receive
        if not r.isConnected():
            raise DriverError(f"UR arm at {self.host}: RTDE receive is disconnected")
        if r.isEmergencyStopped():
            raise DriverError(f"UR arm at {self.host}: emergency stop is pressed")
        if r.isProtectiveStopped():
            raise DriverError(f"UR arm at {self.host}: protective stop (clear it on the pendant)")
        robot_time, now = r.getTimestamp(), self.clock()
        if robot_time != self._last_robot_time:
            self._last_robot_time, self._last_change = robot_time, now
        elif now - self._last_change > self.receive_timeout:
            raise DriverError(f"UR arm at {self.host}: no new RTDE data for {now - self._last_change:.3f} s "
                              f"(timeout {self.receive_timeout} s)")

    def state(self) -> ArmState:
        self._check()
        r = self.receive
        return ArmState(np.asarray(r.getActualQ(), float), np.asarray(r.getActualQd(), float),
                        rotvec_pose_to_quat(np.asarray(r.getActualTCPPose(), float)),
                        np.asarray(r.getActualTCPForce(), float), time.time())

    def command(self, target: np.ndarray) -> None:
        self._check()
        pose = quat_pose_to_rotvec(np.asarray(target, float)).tolist()
        if not self.control.servoL(pose, self.speed, self.acceleration, self.period, self.lookahead, self.gain):
            raise DriverError(f"UR arm at {self.host}: servoL was refused")

    def command_joints(self, q: np.ndarray) -> None:
        q = joint_targets(q, JOINTS, self.label)
        self._check()
        # servoJ(q, speed, acceleration, time, lookahead_time, gain): speed and acceleration are unused by
        # servoJ on current controllers; time is how long the target is tracked (one control period)
        if not self.control.servoJ(q.tolist(), self.speed, self.acceleration, self.period, self.lookahead, self.gain):
            raise DriverError(f"UR arm at {self.host}: servoJ was refused")

    def stop(self) -> None:
        self.control.servoStop(2.0)

    @property
    def home_pose(self) -> np.ndarray:
        return self._home.copy()

    def close(self) -> None:
        self.control.servoStop(2.0)
        self.control.stopScript()
        self.control.disconnect()
        self.receive.disconnect()
