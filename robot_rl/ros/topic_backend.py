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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from robot_rl import messages
from robot_rl.drivers.base import Arm, ArmState, Camera, CameraInfo, DriverError, Frame, UnsupportedCommand
from robot_rl.env.backend import RobotBackend
from robot_rl.messages import MessageTypes
from robot_rl.safety import SafeArm, SafetyLimits, load_limits
from robot_rl.teleop.device import TeleopDevice, TeleopEvent, TeleopSample

if TYPE_CHECKING:
    from omegaconf import DictConfig


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
        return Frame(messages.image_from_msg(msg), messages.stamp_from_msg(msg.header.stamp))

    def info(self) -> CameraInfo:
        msg = _wait_for(self._info, self.wait, self.clock, f"camera {self.name!r}: no {self.name}/camera_info")
        return messages.camera_info_from_msg(msg)


class TopicArm(Arm):
    """``joint_states``, ``ee_pose`` and ``wrench`` in, ``target_pose`` out.

    Joint targets have no topic (arm_node takes poses and twists), so this arm takes no
    joint commands. Force: arm_node's own safety chain, closest to the hardware, refuses at
    its start-up a contact limit on a driver that cannot sense force, and publishes what the
    driver measures on ``wrench``; ``senses_force`` says whether to trust that topic here
    (False for an arm_node that runs with ``contact: none``).
    """

    takes_joint_commands = False

    def __init__(self, joint_names: Sequence[str], home_pose: np.ndarray, types: MessageTypes,
                 send: Callable[[Any], None], base_frame: str = "base", wait: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, stamp: Callable[[], float] = time.time,
                 senses_force: bool = True):
        self.joint_names, self.types, self.send, self.base_frame = list(joint_names), types, send, base_frame
        self.senses_force = senses_force
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
        joints = messages.joint_state_from_msg(
            _wait_for(self._joints, self.wait, self.clock, "arm: no joint_states"), self.joint_names)
        wrench_msg = self._wrench.get()
        wrench = np.zeros(6) if wrench_msg is None else messages.wrench_from_msg(wrench_msg)
        dq = np.nan_to_num(joints.velocity)  # an arm that does not report velocities: 0
        return ArmState(joints.position, dq, messages.pose_from_msg(pose_msg), wrench,
                        messages.stamp_from_msg(pose_msg.header.stamp))

    def command(self, target: np.ndarray) -> None:
        self.send(messages.pose_to_msg(self.types, np.asarray(target, dtype=float), self.stamp(), self.base_frame))

    def command_joints(self, q: np.ndarray) -> None:
        raise UnsupportedCommand(f"{self.label} takes end-effector targets only: arm_node has no joint command topic")

    @property
    def label(self) -> str:
        return "the arm behind ROS topics (arm_node)"

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


class TopicTeleop(TeleopDevice):
    """teleop_node's topics as a device: ``teleop/twist`` (TwistStamped), ``teleop/gripper``
    (Float32, +1 close, -1 open) and ``teleop/events`` (String, one per press).

    Motion older than ``stale`` seconds (by this machine's clock, on arrival) reads as
    untouched: an operator whose node died is not intervening. Events are each reported once.
    """

    def __init__(self, stale: float = 0.2, clock: Callable[[], float] = time.monotonic):
        self.stale, self.clock = stale, clock
        self._lock = threading.Lock()
        self._twist, self._twist_at = np.zeros(6), -np.inf
        self._gripper: float | None = None
        self._gripper_at = -np.inf
        self._events: set[TeleopEvent] = set()

    def on_twist(self, msg: Any) -> None:
        twist = messages.twist_from_msg(msg)
        with self._lock:
            self._twist, self._twist_at = twist, self.clock()

    def on_gripper(self, msg: Any) -> None:
        with self._lock:
            self._gripper, self._gripper_at = float(msg.data), self.clock()

    def on_event(self, msg: Any) -> None:
        try:
            event = TeleopEvent(msg.data)
        except ValueError:
            raise messages.MessageError(f"teleop/events: unknown event {msg.data!r}; expected one of "
                                       f"{[e.value for e in TeleopEvent]}") from None
        with self._lock:
            self._events.add(event)

    def read(self) -> TeleopSample:
        now = self.clock()
        with self._lock:
            twist = self._twist if now - self._twist_at <= self.stale else np.zeros(6)
            gripper = self._gripper if now - self._gripper_at <= self.stale else None
            events, self._events = frozenset(self._events), set()
        return TeleopSample(twist.copy(), gripper, events, now)


@dataclass
class ActorTopics:
    """What actor_node subscribes to and publishes, ROS-free: the backend the actor's env
    runs on, the operator's device, and ``subscriptions`` as (topic, message type, callback)."""

    backend: TopicBackend
    teleop: TopicTeleop | None
    subscriptions: list[tuple[str, str, Callable[[Any], None]]]

    @classmethod
    def from_config(cls, cfg: DictConfig, types: MessageTypes, send: Callable[[Any], None],
                    base_frame: str = "base", wait: float = 5.0) -> ActorTopics:
        """The robot ``cfg`` describes (``robot.backend=ros``): its cameras, its arm (joint names
        from the safety limits file) and, with ``teleop=ros``, the operator's device."""
        limits = load_limits(cfg.robot.safety).narrowed(list(cfg.robot.workspace.low), list(cfg.robot.workspace.high))
        cameras = {name: TopicCamera(name, wait) for name in cfg.cameras}
        home = np.array([*cfg.robot.home_ee_pos, *cfg.robot.home_ee_quat], dtype=float)
        home[3:] /= np.linalg.norm(home[3:])
        arm = TopicArm(limits.joint_names, home, types, send, base_frame, wait)
        backend = TopicBackend(cameras, arm, limits, 1.0 / cfg.robot.control_hz,
                               start_noise=list(cfg.robot.start_noise))
        subscriptions = [("joint_states", "sensor_msgs/msg/JointState", arm.on_joint_state),
                         ("ee_pose", "geometry_msgs/msg/PoseStamped", arm.on_ee_pose),
                         ("wrench", "geometry_msgs/msg/WrenchStamped", arm.on_wrench)]
        for name, camera in cameras.items():
            subscriptions += [(f"{name}/image_raw", "sensor_msgs/msg/Image", camera.on_image),
                              (f"{name}/camera_info", "sensor_msgs/msg/CameraInfo", camera.on_camera_info)]
        teleop = TopicTeleop() if cfg.teleop.device == "ros" else None
        if teleop is not None:
            subscriptions += [("teleop/twist", "geometry_msgs/msg/TwistStamped", teleop.on_twist),
                              ("teleop/gripper", "std_msgs/msg/Float32", teleop.on_gripper),
                              ("teleop/events", "std_msgs/msg/String", teleop.on_event)]
        return cls(backend, teleop, subscriptions)


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
