"""UFACTORY xArm 5/6/7, 850 and Lite6 through xarm-python-sdk, in servo mode.

The SDK speaks millimetres and roll/pitch/yaw; this driver speaks metres and quaternions.
An error code on the controller raises :class:`DriverError` (which latches robot_rl's
e-stop); the driver never calls ``clean_error``: a person does, after looking.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from robot_rl.drivers.base import Arm, ArmState, DriverError, import_sdk

SERVO_MODE = 1


class XArm(Arm):
    def __init__(self, ip: str, home_pose: np.ndarray, api: Any = None):
        if api is None:
            wrapper = import_sdk("xarm.wrapper", "pip install xarm-python-sdk", "xarm")
            api = wrapper.XArmAPI(ip, is_radian=True)
        self.ip, self.api = ip, api
        self._home = np.asarray(home_pose, dtype=float)
        self._check("connect")
        for call, args in (("motion_enable", {"enable": True}), ("set_mode", {"mode": SERVO_MODE}),
                           ("set_state", {"state": 0})):
            self._ok(getattr(api, call)(**args), call)

    def _ok(self, code: int, what: str) -> None:
        if code != 0:
            raise DriverError(f"xArm at {self.ip}: {what} failed with code {code}")

    def _check(self, what: str) -> None:
        api = self.api
        if not api.connected:
            raise DriverError(f"xArm at {self.ip}: not connected ({what})")
        if api.error_code != 0:
            raise DriverError(f"xArm at {self.ip}: controller error {api.error_code} (clear it on the robot)")

    def state(self) -> ArmState:
        self._check("state")
        code, pose = self.api.get_position(is_radian=True)
        self._ok(code, "get_position")
        code, (q, dq, _effort) = self.api.get_joint_states(is_radian=True)
        self._ok(code, "get_joint_states")
        code, wrench = self.api.get_ft_sensor_data()
        wrench = np.asarray(wrench, float) if code == 0 else np.zeros(6)  # no F/T sensor: zeros
        quat = Rotation.from_euler("xyz", pose[3:6]).as_quat(scalar_first=True)
        return ArmState(np.asarray(q, float), np.asarray(dq, float),
                        np.concatenate([np.asarray(pose[:3], float) / 1000.0, quat]), wrench, time.time())

    def command(self, target: np.ndarray) -> None:
        self._check("command")
        target = np.asarray(target, float)
        rpy = Rotation.from_quat(target[3:], scalar_first=True).as_euler("xyz")
        self._ok(self.api.set_servo_cartesian([*(target[:3] * 1000.0), *rpy], is_radian=True), "set_servo_cartesian")

    def stop(self) -> None:
        """Hold where the arm is (servo to its own pose): no mode change, nothing to re-enable."""
        code, pose = self.api.get_position(is_radian=True)
        self._ok(code, "get_position")
        self._ok(self.api.set_servo_cartesian(list(pose), is_radian=True), "set_servo_cartesian")

    @property
    def home_pose(self) -> np.ndarray:
        return self._home.copy()

    def close(self) -> None:
        self.api.disconnect()
