"""A :class:`RobotBackend` whose drivers are ROS 2 topics: the actor side of ``camera_node``
and ``arm_node``. ROS-free: the node feeds it messages (``on_*`` callbacks, from any
thread) and gives it a function that publishes a command, so all of it runs in tests.

Observations are the newest messages; each carries its capture stamp, which the arm's
watchdog checks (SafeArm), so a camera or arm that went quiet halts the arm instead of
feeding the policy stale data.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from robot_rl.drivers.base import Arm, ArmState, Camera, CameraInfo, DriverError, Frame
from robot_rl.env.backend import RobotBackend
from robot_rl.ros import convert
from robot_rl.ros.convert import MessageTypes
from robot_rl.safety import SafeArm, SafetyLimits


class Latest:
    """The newest message on a topic, from the subscription's thread to the actor's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._msg: Any = None

    def put(self, msg: Any) -> None:
        with self._lock:
            self._msg = msg

    def get(self) -> Any:
        with self._lock:
            return self._msg


class TopicCamera(Camera):
    """``<name>/image_raw`` (+ ``camera_info``) as a Camera."""

    def __init__(self, name: str, wait: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.name, self.wait, self.clock = name, wait, clock
        self._image, self._info = Latest(), Latest()

    def on_image(self, msg: Any) -> None:
        self._image.put(msg)

    def on_camera_info(self, msg: Any) -> None:
        self._info.put(msg)

    def read(self) -> Frame:
        msg = _wait_for(self._image, self.wait, self.clock, f"camera {self.name!r}: no image on {self.name}/image_raw")
        return Frame(convert.image_from_msg(msg), convert.stamp_from_msg(msg.header.stamp))

    def info(self) -> CameraInfo:
        msg = _wait_for(self._info, self.wait, self.clock, f"camera {self.name!r}: no {self.name}/camera_info")
        return convert.camera_info_from_msg(msg)


class TopicArm(Arm):
    """``joint_states``, ``ee_pose`` and ``wrench`` in, ``target_pose`` out."""

    def __init__(self, joint_names: Sequence[str], home_pose: np.ndarray, types: MessageTypes,
                 send: Callable[[Any], None], base_frame: str = "base", wait: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, stamp: Callable[[], float] = time.time):
        self.joint_names, self.types, self.send, self.base_frame = list(joint_names), types, send, base_frame
        self.stamp = stamp
        self.wait, self.clock = wait, clock
        self._home = np.asarray(home_pose, dtype=float)
        self._joints, self._pose, self._wrench = Latest(), Latest(), Latest()

    def on_joint_state(self, msg: Any) -> None:
        self._joints.put(msg)

    def on_ee_pose(self, msg: Any) -> None:
        self._pose.put(msg)

    def on_wrench(self, msg: Any) -> None:
        self._wrench.put(msg)

    def state(self) -> ArmState:
        pose_msg = _wait_for(self._pose, self.wait, self.clock, "arm: no end-effector pose on ee_pose")
        joints = convert.joint_state_from_msg(
            _wait_for(self._joints, self.wait, self.clock, "arm: no joint_states"), self.joint_names)
        wrench_msg = self._wrench.get()
        wrench = np.zeros(6) if wrench_msg is None else convert.wrench_from_msg(wrench_msg)
        dq = np.nan_to_num(joints.velocity)  # an arm that does not report velocities: 0
        return ArmState(joints.position, dq, convert.pose_from_msg(pose_msg), wrench,
                        convert.stamp_from_msg(pose_msg.header.stamp))

    def command(self, target: np.ndarray) -> None:
        self.send(convert.pose_to_msg(self.types, np.asarray(target, dtype=float), self.stamp(), self.base_frame))

    def stop(self) -> None:
        """Hold: command the pose the arm is at (arm_node's own watchdog holds it too)."""
        self.command(self.state().ee_pose)

    @property
    def home_pose(self) -> np.ndarray:
        return self._home.copy()


class TopicBackend(RobotBackend):
    """Cameras and an arm behind topics; the actor's loop paces time, so ``advance`` returns at once.

    ``reset`` moves the end effector to a start pose drawn around home, through the safety
    chain, and waits (up to ``reset_timeout``) until it is there.
    """

    def __init__(self, cameras: dict[str, TopicCamera], arm: TopicArm, limits: SafetyLimits, control_period: float,
                 start_noise: Sequence[float] = (0.0, 0.0, 0.0), reset_timeout: float = 10.0,
                 reset_tolerance: float = 0.01, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time):
        self.cameras = dict(cameras)
        self.arm = SafeArm.from_limits(arm, limits, control_period, clock=clock)
        self.gripper = None
        self.control_period = control_period
        self.start_noise = np.asarray(start_noise, dtype=float)
        self.reset_timeout, self.reset_tolerance, self.sleep = reset_timeout, reset_tolerance, sleep

    def reset(self, rng: np.random.Generator) -> None:
        self.arm.reset()
        home = self.arm.home_pose
        goal = np.concatenate([home[:3] + rng.uniform(-self.start_noise, self.start_noise), home[3:]])
        for _ in range(max(1, round(self.reset_timeout / self.control_period))):
            if np.linalg.norm(self.arm.state().ee_pose[:3] - goal[:3]) <= self.reset_tolerance:
                self.arm.reset()  # the move is done: no filter history carries into the episode
                return
            self.arm.command(goal)
            self.sleep(self.control_period)
        distance = np.linalg.norm(self.arm.state().ee_pose[:3] - goal[:3])
        raise DriverError(f"reset: the arm is still {distance:.3f} m from its start pose after {self.reset_timeout} s")

    def advance(self, duration: float) -> None:
        """Real time passes by itself; the actor's pacer waits for the next tick."""


def _wait_for(latest: Latest, wait: float, clock: Callable[[], float], message: str) -> Any:
    """The newest message; at start-up, wait up to ``wait`` seconds for the first one."""
    msg = latest.get()
    if msg is not None:
        return msg
    deadline = clock() + wait
    while clock() < deadline:
        time.sleep(0.01)
        if (msg := latest.get()) is not None:
            return msg
    raise DriverError(f"{message} within {wait} s")
