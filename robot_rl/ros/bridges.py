"""What each ROS 2 node does, without ROS: the nodes in ``robot_rl/ros/nodes.py`` only
declare parameters, create publishers and subscriptions, and hand messages to these
classes and publish what they return. So all of the logic runs in tests on machines
without ROS, against the real message definitions (rosbags).

Each ``tick`` returns ``(topic, message)`` pairs, topics relative to the node.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from robot_rl import messages
from robot_rl.drivers.base import Camera, moved_pose
from robot_rl.messages import MessageError, MessageTypes
from robot_rl.safety.arm import SafeArm
from robot_rl.teleop.device import TeleopDevice

log = logging.getLogger("robot_rl.ros")

Outgoing = list[tuple[str, Any]]


class CameraStream:
    """camera_node: each tick, the newest frame as ``image_raw`` (and ``image_raw/compressed``)
    with its ``camera_info``, stamped with the capture time (``restamp``: with that clock's
    time at publishing instead, for the simulated rig whose own clock starts at 0)."""

    def __init__(self, camera: Camera, types: MessageTypes, frame_id: str, encoding: str = "rgb8",
                 compressed: str | None = None, restamp: Callable[[], float] | None = None):
        if encoding not in ("rgb8", "bgr8"):
            raise ValueError(f"a colour camera publishes rgb8 or bgr8, got {encoding!r}")
        if compressed not in (None, "jpeg", "png"):
            raise ValueError(f"compressed must be 'jpeg', 'png' or empty, got {compressed!r}")
        self.camera, self.types, self.frame_id = camera, types, frame_id
        self.encoding, self.compressed, self.restamp = encoding, compressed, restamp
        self.info = dataclasses.replace(camera.info(), frame_id=frame_id)
        self._last_stamp: float | None = None

    def tick(self) -> Outgoing:
        frame = self.camera.read()
        if frame.stamp == self._last_stamp:  # never publish a frame twice
            return []
        self._last_stamp = frame.stamp
        stamp = frame.stamp if self.restamp is None else self.restamp()
        out = [("image_raw", messages.image_to_msg(self.types, frame.image, stamp, self.frame_id, self.encoding)),
               ("camera_info", messages.camera_info_to_msg(self.types, self.info, stamp))]
        if self.compressed:
            out.append(("image_raw/compressed", messages.compressed_image_to_msg(
                self.types, frame.image, stamp, self.frame_id, self.compressed)))
        return out


class ArmServer:
    """arm_node: takes end-effector targets (``target_pose``) or twists (``target_twist``),
    passes every one through the arm's safety chain, watchdog and e-stop latch
    (:class:`SafeArm`), and publishes the arm's state and the safety status.

    A malformed command is refused and counted; it does not count as a command, so the
    watchdog halts the arm if nothing valid follows. ``tick`` runs the watchdog as time
    passes, so a dead actor halts the arm. State is stamped with the arm's reading time
    (``restamp``: with that clock's time at publishing, as for :class:`CameraStream`).
    """

    def __init__(self, arm: SafeArm, types: MessageTypes, joint_names: Sequence[str], base_frame: str = "base",
                 twist_period: float = 0.1, restamp: Callable[[], float] | None = None):
        if twist_period <= 0:
            raise ValueError(f"twist_period must be > 0 s, got {twist_period}")
        self.arm, self.types, self.joint_names = arm, types, list(joint_names)
        self.base_frame, self.twist_period, self.restamp = base_frame, twist_period, restamp
        self.refused = 0

    def on_target_pose(self, msg: Any) -> None:
        pose = self._accept(msg, "target pose", messages.pose_from_msg)
        if pose is not None:
            self.arm.command(pose)

    def on_target_twist(self, msg: Any) -> None:
        """A twist (m/s, rad/s, base frame) becomes the pose it reaches in one ``twist_period``."""
        twist = self._accept(msg, "twist", messages.twist_from_msg)
        if twist is None:
            return
        dt = self.twist_period
        self.arm.command(moved_pose(self.arm.state().ee_pose, twist[:3] * dt, twist[3:] * dt))

    def _accept(self, msg: Any, what: str, parse: Callable[[Any], np.ndarray]) -> np.ndarray | None:
        """The command's numbers, or None when it is refused (wrong frame, malformed): counted and logged."""
        try:
            if msg.header.frame_id not in ("", self.base_frame):
                raise MessageError(f"{what} is in frame {msg.header.frame_id!r}, expected {self.base_frame!r}")
            return parse(msg)
        except MessageError as e:
            self.refused += 1
            log.warning("arm_node refused a command: %s", e)
            return None

    def on_estop(self, msg: Any) -> None:
        """``std_msgs/Bool``: true latches the e-stop; false does nothing (only the reset service clears it)."""
        if msg.data:
            self.arm.estop.trigger("ros", "e-stop topic")

    def reset_estop(self) -> tuple[bool, str]:
        """The explicit reset (a ``std_srvs/Trigger`` service)."""
        record = self.arm.estop.record
        if record is None:
            return True, "e-stop was not latched"
        self.arm.estop.reset()
        self.arm.reset()
        return True, f"e-stop reset (was latched by {record.source}: {record.reason})"

    def tick(self) -> Outgoing:
        self.arm.tick()
        state = self.arm.state()
        stamp = state.stamp if self.restamp is None else self.restamp()
        types = self.types
        status = {"halted": self.arm.halted, "estop": self.arm.estop.latched,
                  "estop_by": None if self.arm.estop.record is None else self.arm.estop.record.source,
                  "refused_commands": self.refused, "interventions": dict(self.arm.counts)}
        return [
            ("joint_states", messages.joint_state_to_msg(types, self.joint_names, state.q, state.dq, None, stamp)),
            ("ee_pose", messages.pose_to_msg(types, state.ee_pose, stamp, self.base_frame)),
            ("wrench", messages.wrench_to_msg(types, state.wrench, stamp, self.base_frame)),
            ("safety_status", types.cls("std_msgs/msg/String")(data=json.dumps(status, sort_keys=True))),
            ("estop_state", types.cls("std_msgs/msg/Bool")(data=self.arm.estop.latched)),
        ]


class TeleopStream:
    """teleop_node: the device's twist (normalised, operator frame) as ``twist``, its gripper
    command as ``gripper`` (+1 close, -1 open) and each event once as ``events``."""

    def __init__(self, device: TeleopDevice, types: MessageTypes, frame_id: str, clock: Callable[[], float]):
        self.device, self.types, self.frame_id, self.clock = device, types, frame_id, clock

    def tick(self) -> Outgoing:
        sample = self.device.read()
        stamp = sample.stamp or self.clock()
        out: Outgoing = [("twist", messages.twist_to_msg(self.types, sample.twist, stamp, self.frame_id))]
        if sample.gripper is not None:
            out.append(("gripper", self.types.cls("std_msgs/msg/Float32")(data=float(sample.gripper))))
        out += [("events", self.types.cls("std_msgs/msg/String")(data=str(event))) for event in sorted(sample.events)]
        return out
