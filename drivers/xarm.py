"""UFACTORY xArm 5/6/7, 850 and Lite6 through xarm-python-sdk, in servo mode.

The SDK speaks millimetres and roll/pitch/yaw; this driver speaks metres and quaternions.
End-effector targets go to ``set_servo_cartesian``, joint targets to ``set_servo_angle_j``.
An error code on the controller raises :class:`DriverError` (which latches robot_rl's
e-stop); the driver never calls ``clean_error``: a person does, after looking.

Force: an xArm senses force only with UFACTORY's six-axis F/T sensor fitted, and this
driver reads it only when told so (``ft_sensor=True``): it then enables the sensor at
start-up (``set_ft_sensor_enable``), fails there if the sensor does not answer, and raises
if a reading fails later. Zeroing the sensor (``set_ft_sensor_zero``) is left to a person,
with the tool unloaded. Without the sensor the wrench is reported as zeros and the arm
says it cannot sense force, so a limits file with a contact limit is refused at start-up
(``contact: none`` runs it without one).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from robot_rl.drivers.base import Arm, ArmState, DriverError, import_sdk, joint_targets

SERVO_MODE = 1
# get_joint_states reports 7 joints on every model (unused ones as 0) and set_servo_angle_j takes
# up to 7 (it zeroes those past the arm's axis count): joint targets are 7, as the state's q
JOINTS = 7


class XArm(Arm):
    takes_joint_commands = True

    def __init__(self, ip: str, home_pose: np.ndarray, api: Any = None, ft_sensor: bool = False):
        if api is None:
            wrapper = import_sdk("xarm.wrapper", "pip install xarm-python-sdk", "xarm")
            api = wrapper.XArmAPI(ip, is_radian=True)
        self.ip, self.api, self.ft_sensor = ip, api, bool(ft_sensor)
        self._home = np.asarray(home_pose, dtype=float)
        self._check("connect")
        calls: list[tuple[str, dict[str, Any]]] = [("motion_enable", {"enable": True})]
        if self.ft_sensor:
            calls.append(("set_ft_sensor_enable", {"on_off": 1}))
        calls += [("set_mode", {"mode": SERVO_MODE}), ("set_state", {"state": 0})]
        for call, args in calls:
            self._ok(getattr(api, call)(**args), call)
        if self.ft_sensor:
            code, _ = api.get_ft_sensor_data()
            self._ok(code, "get_ft_sensor_data (ft_sensor=True, but the F/T sensor does not answer)")

    @property
    def senses_force(self) -> bool:  # type: ignore[override]
        return self.ft_sensor

    @property
    def label(self) -> str:
        return f"xArm at {self.ip}" + ("" if self.ft_sensor else " without an F/T sensor (ft_sensor=False)")

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
        if self.ft_sensor:
            code, wrench = self.api.get_ft_sensor_data()
            self._ok(code, "get_ft_sensor_data")
            wrench = np.asarray(wrench, float)
        else:
            wrench = np.zeros(6)  # no sensor: nothing measured (senses_force is False)
        quat = Rotation.from_euler("xyz", pose[3:6]).as_quat(scalar_first=True)
        return ArmState(np.asarray(q, float), np.asarray(dq, float),
                        np.concatenate([np.asarray(pose[:3], float) / 1000.0, quat]), wrench, time.time())

    def command(self, target: np.ndarray) -> None:
        self._check("command")
        target = np.asarray(target, float)
        rpy = Rotation.from_quat(target[3:], scalar_first=True).as_euler("xyz")
        self._ok(self.api.set_servo_cartesian([*(target[:3] * 1000.0), *rpy], is_radian=True), "set_servo_cartesian")

    def command_joints(self, q: np.ndarray) -> None:
        q = joint_targets(q, JOINTS, self.label)
        self._check("command_joints")
        self._ok(self.api.set_servo_angle_j(q.tolist(), is_radian=True), "set_servo_angle_j")

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
