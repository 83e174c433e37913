"""The rclpy nodes: parameters, publishers and subscriptions with explicit QoS, and calls
into the ROS-free classes of ``robot_rl.ros.bridges`` that carry the logic. The only
module of robot_rl that imports rclpy.

    ros2 run robot_rl sim_robot_node --ros-args --params-file config/ros/sim_robot.yaml
    ros2 run robot_rl teleop_node --ros-args -p device:=spacemouse
    ros2 run robot_rl camera_node --ros-args -p driver:=realsense -p name:=front -p device:=<serial>
    ros2 run robot_rl arm_node --ros-args -p driver:=ur -p address:=192.168.1.10 -p safety:=ur5e
    ROBOT_RL_TOKEN=... ros2 run robot_rl actor_node --ros-args -p learner_address:=gpu-box:50051
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from robot_rl.messages import RclpyTypes
from robot_rl.ros.bridges import ArmServer, CameraStream, Outgoing, TeleopStream

# Commands and state: reliable, the newest few. E-stop: latched, so a late subscriber sees it.
COMMAND_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
STATE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def topic_qos(topic: str) -> QoSProfile:
    if topic.endswith(("image_raw", "image_raw/compressed", "camera_info")):
        return qos_profile_sensor_data
    if topic.endswith("estop_state"):
        return LATCHED_QOS
    return STATE_QOS


class BridgeNode(Node):
    """A node that declares typed, described parameters and publishes what a bridge returns."""

    def __init__(self, name: str, parameters: dict[str, tuple[Any, str]]):
        super().__init__(name)
        for key, (default, description) in parameters.items():
            self.declare_parameter(key, default, ParameterDescriptor(description=description))
        self._topic_publishers: dict[str, Any] = {}  # not _publishers: rclpy's Node may use that name

    def param(self, key: str) -> Any:
        return self.get_parameter(key).value

    def publish_all(self, outgoing: Outgoing, prefix: str = "") -> None:
        for topic, msg in outgoing:
            name = f"{prefix}{topic}"
            if name not in self._topic_publishers:
                self._topic_publishers[name] = self.create_publisher(type(msg), name, topic_qos(name))
            self._topic_publishers[name].publish(msg)

    def every(self, hz: float, callback: Callable[[], None]) -> None:
        if hz <= 0:
            raise ValueError(f"{self.get_name()}: a rate must be > 0 Hz, got {hz}")
        self.create_timer(1.0 / hz, callback)


SIM_ROBOT_PARAMETERS = {
    "cameras": (["front", "wrist"], "simulated cameras to publish, as <name>/image_raw and <name>/camera_info"),
    "camera_height": (128, "rendered image height (pixels)"),
    "camera_width": (128, "rendered image width (pixels)"),
    "camera_hz": (10.0, "camera publishing rate (Hz)"),
    "compressed": ("", "also publish <name>/image_raw/compressed: jpeg, png, or empty for none"),
    "control_hz": (10.0, "arm control and state publishing rate (Hz); sim time follows the wall clock"),
    "safety": ("sim_panda", "safety limits: config/safety/<name>.yaml"),
    "base_frame": ("base", "frame of poses, twists and wrenches"),
    "twist_period": (0.1, "a twist command moves the arm for this long (s)"),
}


class SimRobotNode(BridgeNode):
    """The simulated rig as ROS topics: its cameras (``camera_node``'s topics) and its arm
    (``arm_node``'s topics, safety chain and watchdog included) over one MuJoCo world."""

    def __init__(self) -> None:
        super().__init__("sim_robot", SIM_ROBOT_PARAMETERS)
        from robot_rl.safety import load_limits
        from robot_rl.sim.backend import SimBackend
        from robot_rl.sim.simulation import ARM_JOINTS

        size = (self.param("camera_height"), self.param("camera_width"))
        period = 1.0 / self.param("control_hz")
        self.backend = SimBackend({name: size for name in self.param("cameras")},
                                  limits=load_limits(self.param("safety"), ARM_JOINTS), control_period=period)
        self.backend.reset(np.random.default_rng(0))  # the arm at its home pose, the cube on the table
        types = RclpyTypes()
        # the simulator's clock starts at 0: messages carry the wall-clock time they are published at
        self.streams = {name: CameraStream(cam, types, f"{name}_optical", compressed=self.param("compressed") or None,
                                           restamp=time.time)
                        for name, cam in self.backend.cameras.items()}
        self.arm = ArmServer(self.backend.arm, types, ARM_JOINTS, self.param("base_frame"), self.param("twist_period"),
                             restamp=time.time)
        subscribe_arm(self, self.arm)
        self._period, self._wall = period, time.monotonic()
        self.every(self.param("control_hz"), self._control)
        self.every(self.param("camera_hz"), self._cameras)

    def _control(self) -> None:
        now = time.monotonic()
        self.backend.advance(min(now - self._wall, 5 * self._period))  # a stalled process does not jump ahead
        self._wall = now
        self.publish_all(self.arm.tick())

    def _cameras(self) -> None:
        for name, stream in self.streams.items():
            self.publish_all(stream.tick(), prefix=f"{name}/")

    def destroy_node(self) -> None:
        self.backend.close()
        super().destroy_node()


def subscribe_arm(node: BridgeNode, arm: ArmServer) -> None:
    """The arm's inputs: targets, twists, the e-stop topic and the reset service."""
    from geometry_msgs.msg import PoseStamped, TwistStamped

    node.create_subscription(PoseStamped, "target_pose", arm.on_target_pose, COMMAND_QOS)
    node.create_subscription(TwistStamped, "target_twist", arm.on_target_twist, COMMAND_QOS)
    node.create_subscription(Bool, "estop", arm.on_estop, LATCHED_QOS)

    def reset(_request: Any, response: Any) -> Any:
        response.success, response.message = arm.reset_estop()
        return response

    node.create_service(Trigger, "reset_estop", reset)


CAMERA_PARAMETERS = {
    "driver": ("realsense", "camera driver: realsense | opencv"),
    "name": ("front", "camera name: topics are <name>/image_raw, <name>/camera_info"),
    "device": ("", "realsense: serial number (empty: the only one); opencv: device index or path"),
    "width": (640, "image width (pixels)"),
    "height": (480, "image height (pixels)"),
    "fps": (30, "frames per second"),
    "frame_id": ("", "frame of the images (empty: <name>_optical)"),
    "encoding": ("rgb8", "rgb8 | bgr8"),
    "compressed": ("", "also publish image_raw/compressed: jpeg, png, or empty for none"),
    "camera_info": ("", "calibrated intrinsics: a camera_info YAML (robot-rl calibrate intrinsics); "
                        "empty: the driver's own"),
}


class CameraNode(BridgeNode):
    """Any Camera driver as ``<name>/image_raw`` and ``<name>/camera_info`` (sensor-data QoS)."""

    def __init__(self) -> None:
        super().__init__("camera", CAMERA_PARAMETERS)
        from robot_rl.drivers.factory import make_camera

        driver, name, device = self.param("driver"), self.param("name"), self.param("device")
        options = {"width": self.param("width"), "height": self.param("height"), "fps": self.param("fps"),
                   "camera_info": self.param("camera_info") or None}
        if driver == "realsense":
            options["serial"] = device or None
        elif device:
            options["device"] = int(device) if device.isdigit() else device
        self.camera = make_camera(driver, name, **options)
        self.stream = CameraStream(self.camera, RclpyTypes(), self.param("frame_id") or f"{name}_optical",
                                   self.param("encoding"), self.param("compressed") or None)
        self.every(float(self.param("fps")), lambda: self.publish_all(self.stream.tick(), prefix=f"{name}/"))

    def destroy_node(self) -> None:
        self.camera.close()
        super().destroy_node()


ARM_PARAMETERS = {
    "driver": ("ur", "arm driver: ur | xarm"),
    "address": ("192.168.1.10", "the arm controller's IP address"),
    "home_pose": ([0.45, 0.0, 0.3, 0.0, 1.0, 0.0, 0.0], "end-effector home pose: x y z (m), qw qx qy qz"),
    "control_hz": (10.0, "how often the watchdog runs and the state is published (Hz)"),
    "safety": ("ur5e", "safety limits: config/safety/<name>.yaml (or a path)"),
    "base_frame": ("base", "frame of poses, twists and wrenches"),
    "twist_period": (0.1, "a twist command moves the arm for this long (s)"),
    "ft_sensor": (False, "xarm: a UFACTORY six-axis F/T sensor is fitted (without one the arm senses no force, "
                         "and a safety file with contact limits is refused unless it says contact: none)"),
}


class ArmNode(BridgeNode):
    """Any Arm driver behind the safety chain, watchdog and e-stop latch, closest to the
    hardware: a dead actor or a stale command halts the arm here."""

    def __init__(self) -> None:
        super().__init__("arm", ARM_PARAMETERS)
        from robot_rl.drivers.factory import ARM_JOINTS, make_arm
        from robot_rl.safety import SafeArm, load_limits

        driver = self.param("driver")
        if driver not in ARM_JOINTS:
            raise ValueError(f"arm_node: unknown arm driver {driver!r}; choose one of {sorted(ARM_JOINTS)}")
        period = 1.0 / self.param("control_hz")
        limits = load_limits(self.param("safety"), ARM_JOINTS[driver])
        options = {"ft_sensor": True} if driver == "xarm" and self.param("ft_sensor") else {}
        self.driver = make_arm(driver, self.param("address"), np.asarray(self.param("home_pose"), dtype=float),
                               **options)
        safe = SafeArm.from_limits(self.driver, limits, period, clock=time.time)
        self.arm = ArmServer(safe, RclpyTypes(), ARM_JOINTS[driver], self.param("base_frame"),
                             self.param("twist_period"))
        subscribe_arm(self, self.arm)
        self.every(self.param("control_hz"), lambda: self.publish_all(self.arm.tick()))

    def destroy_node(self) -> None:
        self.arm.arm.stop()
        self.driver.close()
        super().destroy_node()


TELEOP_PARAMETERS = {
    "device": ("keyboard", "keyboard | spacemouse | gamepad"),
    "rate_hz": (30.0, "how often the device is read and published (Hz)"),
    "deadzone": (0.05, "deflections below this are published as zero"),
    "frame_id": ("teleop", "frame of the published twist (the operator's)"),
}


class TeleopNode(BridgeNode):
    def __init__(self) -> None:
        super().__init__("teleop", TELEOP_PARAMETERS)
        from omegaconf import OmegaConf

        from robot_rl.intervention.factory import make_device

        device = self.param("device")
        if device not in ("keyboard", "spacemouse", "gamepad"):
            raise ValueError(f"teleop_node: device must be keyboard, spacemouse or gamepad, got {device!r}")
        cfg = OmegaConf.create({"teleop": {"device": device, "deadzone": self.param("deadzone")}})
        self.stream = TeleopStream(make_device(cfg, None), RclpyTypes(), self.param("frame_id"), time.time)
        self.every(self.param("rate_hz"), lambda: self.publish_all(self.stream.tick()))


ACTOR_PARAMETERS = {
    "overrides": (["robot=ur5e", "cameras=ros", "task=labeled", "teleop=ros"],
                  "overrides of robot-rl's train config (key=value, group=name); robot.backend must be ros"),
    "learner_address": ("127.0.0.1:50051", "the learner's host:port; both sides need $ROBOT_RL_TOKEN"),
    "run_dir": ("runs/actor", "where the actor's EpisodeStore (<actor_id>.zarr) and logs go"),
    "actor_id": ("actor-0", "this actor's name on the learner and its store's file name"),
    "base_frame": ("base", "frame of the target poses it sends"),
    "mode": ("train", "train: act and learn with the learner | record: record the operator's demonstrations "
                      "(episodes=N, record=PATH in overrides; default <run_dir>/demos.zarr)"),
}


class ActorNode(BridgeNode):
    """The actor on a ROS 2 robot: a RobotEnv over the newest camera and arm messages, the
    same actor loop, EpisodeStore and learner link as direct mode, the operator's device
    from teleop_node's topics, and the console. Commands go to arm_node's ``target_pose``,
    where the safety chain runs again next to the arm."""

    def __init__(self) -> None:
        super().__init__("actor", ACTOR_PARAMETERS)
        import threading

        from robot_rl.config import ConfigError
        from robot_rl.ros.topic_backend import ActorTopics
        from robot_rl.schema import load_config

        if self.param("mode") not in ("train", "record"):
            raise ValueError(f"actor_node: mode must be train or record, got {self.param('mode')!r}")
        overrides = [*self.param("overrides"), f"learner.address={self.param('learner_address')}"]
        self.cfg = load_config(overrides, name="train")
        if self.cfg.robot.backend != "ros":
            raise ConfigError(f"invalid value for 'robot.backend': actor_node drives a ROS 2 robot (robot=ur5e, or "
                              f"any robot with backend: ros), got {self.cfg.robot.backend!r}")
        self._target = self.create_publisher(RclpyTypes().cls("geometry_msgs/msg/PoseStamped"), "target_pose",
                                             COMMAND_QOS)
        self.topics = ActorTopics.from_config(self.cfg, RclpyTypes(), self._send, self.param("base_frame"))
        self.refused = 0
        for topic, msg_type, callback in self.topics.subscriptions:
            self.create_subscription(RclpyTypes().cls(msg_type), topic, self._guarded(topic, callback),
                                     topic_qos(topic))
        self.stop = threading.Event()  # set when the callbacks stop being served: the actor stops too

    def _send(self, msg: Any) -> None:
        """Publish a target pose; once ROS is shutting down (a signal), drop it: the work is
        about to stop, and arm_node's watchdog holds the arm when commands stop coming."""
        try:
            self._target.publish(msg)
        except Exception:
            if rclpy.ok():
                raise

    def _guarded(self, topic: str, callback: Callable[[Any], None]) -> Callable[[Any], None]:
        """A malformed message is refused, counted and logged; it must not end the node's spinning."""
        from robot_rl.messages import MessageError

        def guarded(msg: Any) -> None:
            try:
                callback(msg)
            except MessageError as e:
                self.refused += 1
                self.get_logger().warning(f"actor_node refused a message on {topic}: {e}")

        return guarded

    def work(self) -> Any:
        """The actor's loop, in the main thread while another spins the subscriptions."""
        from pathlib import Path

        from robot_rl.rl.actor_process import run_actor
        from robot_rl.rl.rollout import record_teleop
        from robot_rl.robots import make_env

        run_dir = Path(self.param("run_dir"))
        run_dir.mkdir(parents=True, exist_ok=True)
        env_factory = lambda cfg: make_env(cfg, backend=self.topics.backend)  # noqa: E731
        if self.param("mode") == "record":
            path = Path(self.cfg.record) if self.cfg.record else run_dir / "demos.zarr"
            return record_teleop(self.cfg, path, env_factory, self.topics.teleop)
        return run_actor(self.cfg, run_dir, progress_bar=False, actor_id=self.param("actor_id"),
                         env_factory=env_factory, device=self.topics.teleop, stop=self.stop)


def run(node_class: type[BridgeNode], args: list[str] | None = None) -> int:
    """Spin ``node_class`` until Ctrl-C or SIGTERM (exit code 0, no traceback); a node with a
    ``work`` method runs it in this thread while a background thread spins its callbacks,
    and stops when the work is done. A node that fails (in its constructor, a callback or
    its work) logs the error in one line, the traceback at debug level, and returns 1."""
    import faulthandler

    faulthandler.enable()  # a crash in native code still says where, in the launch log
    rclpy.init(args=args)
    node, code = None, 0
    try:
        node = node_class()
        if hasattr(node, "work"):
            _work(node)
        else:
            rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # Ctrl-C, SIGTERM, ros2 launch stopping the node
    except Exception as e:
        if rclpy.ok():
            code = _failed(node_class, e)
        # else the context was shut down (a signal) while a callback or the work ran: a stop
    finally:
        _ignore_signals()  # a second Ctrl-C (the terminal's and launch's) must not break the clean-up
        try:
            if node is not None and not getattr(node, "still_spinning", False):
                node.destroy_node()  # never under an executor that still spins it (a crash in rcl)
        except Exception as e:
            code = code or _failed(node_class, e)
        rclpy.try_shutdown()
    return code


def _work(node: Any) -> None:
    """``node.work()`` here, the node's callbacks on an executor in a background thread."""
    import threading

    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor()
    executor.add_node(node)

    def spin() -> None:
        try:
            executor.spin()
        except (ExternalShutdownException, KeyboardInterrupt):
            pass
        finally:
            node.stop.set()  # no more messages: the work must not go on with stale ones

    spinner = threading.Thread(target=spin, name="spin", daemon=True)
    spinner.start()
    try:
        node.work()
    finally:
        _ignore_signals()  # from here on the node is stopping: a signal must not cut the executor's shutdown
        executor.shutdown(timeout_sec=10.0)
        spinner.join(10.0)
        node.still_spinning = spinner.is_alive()


def _failed(node_class: type[BridgeNode], error: Exception) -> int:
    import traceback

    logger = get_logger(node_class.__name__)
    logger.error(f"{type(error).__name__}: {error}")
    logger.debug("".join(traceback.format_exception(error)))
    return 1


def _ignore_signals() -> None:
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def sim_robot_main(args: list[str] | None = None) -> int:
    return run(SimRobotNode, args)


def teleop_main(args: list[str] | None = None) -> int:
    return run(TeleopNode, args)


def camera_main(args: list[str] | None = None) -> int:
    return run(CameraNode, args)


def arm_main(args: list[str] | None = None) -> int:
    return run(ArmNode, args)


def actor_main(args: list[str] | None = None) -> int:
    return run(ActorNode, args)
