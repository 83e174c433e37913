"""The ROS 2 nodes, through their ROS-free logic and through a test double of rclpy
(tests/rclpy_double.py) carrying the real message definitions."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

from robot_rl import messages
from robot_rl.drivers.base import Camera, CameraInfo, Frame
from robot_rl.messages import RosbagsTypes
from robot_rl.ros.bridges import CameraStream, TeleopStream
from robot_rl.teleop.device import TeleopDevice, TeleopEvent, TeleopSample
from tests import rclpy_double


def load_nodes(monkeypatch, **overrides):
    """robot_rl.ros.nodes imported over the rclpy double, with parameters set as by --ros-args -p."""
    types = rclpy_double.install(monkeypatch)
    monkeypatch.setattr(rclpy_double.NodeDouble, "overrides", overrides)
    return importlib.import_module("robot_rl.ros.nodes"), types


class WallClock:
    """Stands in for time.monotonic inside the node, so sim time advances when the test says."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def sim_node(monkeypatch):
    nodes, types = load_nodes(monkeypatch, camera_height=32, camera_width=32)
    clock = WallClock()
    monkeypatch.setattr(nodes.time, "monotonic", clock)
    node = nodes.SimRobotNode()
    (control_period, control), (_, cameras) = node.timers
    yield node, types, clock, control, cameras, control_period
    node.destroy_node()


def latest(node, topic):
    return node.publishers[topic].sent[-1]


def run_for(node, clock, control, seconds, period=0.1, before_each=None):
    for _ in range(round(seconds / period)):
        if before_each:
            before_each()
        clock.now += period
        control()


def test_parameters_are_declared_with_types_defaults_and_descriptions(sim_node):
    node = sim_node[0]
    assert set(node.parameters) >= {"cameras", "camera_hz", "control_hz", "safety", "compressed"}
    assert all(descriptor.description for _, descriptor in node.parameters.values())
    assert node.get_parameter("camera_height").value == 32  # an override, as from a params file


def test_sim_robot_publishes_cameras_and_arm_state_with_qos(sim_node):
    node, _, clock, control, cameras, period = sim_node
    assert period == pytest.approx(0.1)
    run_for(node, clock, control, 0.3)
    cameras()
    image = latest(node, "front/image_raw")
    assert (image.height, image.width, image.encoding) == (32, 32, "rgb8")
    assert node.publishers["front/image_raw"].qos.reliability == "best_effort"  # sensor-data QoS
    info = messages.camera_info_from_msg(latest(node, "wrist/camera_info"))
    assert info.frame_id == "wrist_optical" and info.width == 32
    assert messages.stamp_from_msg(image.header.stamp) == messages.stamp_from_msg(latest(node, "front/camera_info")
                                                                                 .header.stamp)
    cameras()  # no new frame since: nothing is published twice
    assert len(node.publishers["front/image_raw"].sent) == 1
    joints = messages.joint_state_from_msg(latest(node, "joint_states"))
    assert joints.names == tuple(f"joint{i}" for i in range(1, 8)) and np.all(np.isfinite(joints.position))
    assert latest(node, "ee_pose").header.frame_id == "base"
    assert node.publishers["estop_state"].qos.durability == "transient_local"
    assert latest(node, "estop_state").data is False


def test_a_target_pose_moves_the_sim_arm(sim_node):
    node, types, clock, control, _, _ = sim_node
    control()
    start = messages.pose_from_msg(latest(node, "ee_pose"))
    goal = start.copy()
    goal[0] += 0.05
    target = messages.pose_to_msg(types, goal, 0.0, "base")
    run_for(node, clock, control, 1.5, before_each=lambda: node.deliver("target_pose", target))
    reached = messages.pose_from_msg(latest(node, "ee_pose"))
    assert abs(reached[0] - goal[0]) < 0.01 and abs(reached[1] - start[1]) < 0.01
    assert json.loads(latest(node, "safety_status").data)["halted"] is False


def test_a_twist_moves_the_arm_along_it(sim_node):
    node, types, clock, control, _, _ = sim_node
    control()
    start = messages.pose_from_msg(latest(node, "ee_pose"))
    twist = messages.twist_to_msg(types, [0.0, 0.05, 0.0, 0.0, 0.0, 0.0], 0.0, "base")  # 5 cm/s along +y
    run_for(node, clock, control, 1.0, before_each=lambda: node.deliver("target_twist", twist))
    moved = messages.pose_from_msg(latest(node, "ee_pose"))[:3] - start[:3]
    assert 0.025 < moved[1] < 0.07 and abs(moved[0]) < 0.01


def test_a_stale_command_halts_the_arm(sim_node):
    node, types, clock, control, _, _ = sim_node
    target = messages.pose_to_msg(types, messages.pose_from_msg(latest_or_tick(node, control, "ee_pose")), 0.0, "base")
    node.deliver("target_pose", target)
    run_for(node, clock, control, 0.1)
    assert json.loads(latest(node, "safety_status").data)["halted"] is False
    run_for(node, clock, control, 0.3)  # the sim's watchdog timeout is 0.2 s
    status = json.loads(latest(node, "safety_status").data)
    assert status["halted"] is True and status["interventions"]["command_timeout"] == 1


def test_bad_commands_are_refused_and_counted(sim_node):
    node, types, clock, control, _, _ = sim_node
    pose = messages.pose_from_msg(latest_or_tick(node, control, "ee_pose"))
    wrong_frame = messages.pose_to_msg(types, pose, 0.0, "camera")
    not_a_pose = messages.pose_to_msg(types, pose, 0.0, "base")
    not_a_pose.pose.orientation.w = not_a_pose.pose.orientation.x = 0.0
    not_a_pose.pose.orientation.y = not_a_pose.pose.orientation.z = 0.0
    for msg in (wrong_frame, not_a_pose):
        node.deliver("target_pose", msg)
    run_for(node, clock, control, 0.1)
    assert json.loads(latest(node, "safety_status").data)["refused_commands"] == 2


def test_estop_topic_latches_and_only_the_reset_service_clears_it(sim_node):
    node, types, clock, control, _, _ = sim_node
    Bool = types.cls("std_msgs/msg/Bool")
    start = messages.pose_from_msg(latest_or_tick(node, control, "ee_pose"))
    node.deliver("estop", Bool(data=True))
    goal = start.copy()
    goal[2] += 0.05
    target = messages.pose_to_msg(types, goal, 0.0, "base")
    run_for(node, clock, control, 1.0, before_each=lambda: node.deliver("target_pose", target))
    assert latest(node, "estop_state").data is True
    assert abs(messages.pose_from_msg(latest(node, "ee_pose"))[2] - start[2]) < 0.005  # held
    node.deliver("estop", Bool(data=False))  # a false on the topic is not a reset
    run_for(node, clock, control, 0.1)
    assert latest(node, "estop_state").data is True
    response = node.call("reset_estop")
    assert response.success and "latched by ros" in response.message
    run_for(node, clock, control, 1.5, before_each=lambda: node.deliver("target_pose", target))
    assert latest(node, "estop_state").data is False
    assert messages.pose_from_msg(latest(node, "ee_pose"))[2] > start[2] + 0.03


def test_node_main_runs_and_shuts_down(monkeypatch):
    nodes, _ = load_nodes(monkeypatch, camera_height=16, camera_width=16)
    nodes.sim_robot_main([])  # the double's spin returns at once
    import rclpy

    assert not rclpy.ok()


def test_teleop_node_refuses_a_sim_only_device(monkeypatch):
    nodes, _ = load_nodes(monkeypatch, device="sim_expert")
    with pytest.raises(ValueError, match="keyboard, spacemouse or gamepad"):
        nodes.TeleopNode()


def latest_or_tick(node, control, topic):
    if topic not in node.publishers:
        control()
    return latest(node, topic)


# ------------------------------------------------------------------ bridges without a node
class FakeCamera(Camera):
    """A test double for a camera driver."""

    name = "fake"

    def __init__(self):
        self.stamp = 0.0

    def read(self) -> Frame:
        return Frame(np.full((4, 6, 3), int(self.stamp) % 256, np.uint8), self.stamp)

    def info(self) -> CameraInfo:
        return CameraInfo(6, 4, 5.0, 5.0, 2.5, 1.5, "driver_frame")


def test_camera_stream_publishes_each_frame_once_with_compressed_copy():
    types = RosbagsTypes("humble")
    camera = FakeCamera()
    stream = CameraStream(camera, types, "front_optical", encoding="bgr8", compressed="png")
    camera.stamp = 7.0
    out = dict(stream.tick())
    assert set(out) == {"image_raw", "camera_info", "image_raw/compressed"}
    assert np.array_equal(messages.image_from_msg(out["image_raw"]), camera.read().image)
    assert np.array_equal(messages.compressed_image_from_msg(out["image_raw/compressed"]), camera.read().image)
    assert out["camera_info"].header.frame_id == "front_optical"
    assert stream.tick() == []
    with pytest.raises(ValueError, match="rgb8 or bgr8"):
        CameraStream(camera, types, "f", encoding="mono8")


def test_teleop_stream_publishes_twist_gripper_and_each_event():
    class Device(TeleopDevice):
        """A test double for a teleop device."""

        def read(self):
            return TeleopSample(np.array([0.5, 0, 0, 0, 0, -0.25]), 1.0,
                                frozenset({TeleopEvent.SUCCESS, TeleopEvent.INTERVENE}), stamp=3.0)

    types = RosbagsTypes("jazzy")
    out = TeleopStream(Device(), types, "operator", clock=lambda: 0.0).tick()
    topics = [t for t, _ in out]
    assert topics == ["twist", "gripper", "events", "events"]
    assert np.array_equal(messages.twist_from_msg(out[0][1]), [0.5, 0, 0, 0, 0, -0.25])
    assert out[1][1].data == 1.0 and [m.data for _, m in out[2:]] == ["intervene", "success"]


# ------------------------------------------------------------------ driver nodes
def test_camera_node_publishes_an_opencv_camera_with_its_calibration(monkeypatch, tmp_path):
    import cv2

    from tests.test_drivers import CaptureDouble

    frames = [np.full((4, 6, 3), 50 + i, np.uint8) for i in range(3)]
    monkeypatch.setattr(cv2, "VideoCapture", lambda device: CaptureDouble(frames if device == 3 else []))
    from robot_rl.drivers.camera_info import camera_info_yaml

    calibrated = tmp_path / "side.yaml"
    calibrated.write_text(camera_info_yaml(CameraInfo(6, 4, 7.5, 7.25, 2.6, 1.4, "side_optical", (0.01,) * 5)))
    nodes, _ = load_nodes(monkeypatch, driver="opencv", name="side", device="3", fps=15, compressed="png",
                          camera_info=str(calibrated))
    node = nodes.CameraNode()
    (period, publish), = node.timers
    assert period == pytest.approx(1 / 15)
    publish()
    image = latest(node, "side/image_raw")
    assert image.header.frame_id == "side_optical" and messages.image_from_msg(image)[0, 0].tolist() == [50] * 3
    assert set(node.publishers) == {"side/image_raw", "side/camera_info", "side/image_raw/compressed"}
    assert messages.camera_info_from_msg(latest(node, "side/camera_info")).fx == 7.5  # the calibrated intrinsics
    node.destroy_node()


def test_arm_node_filters_commands_to_a_ur_and_halts_on_estop(monkeypatch):
    import sys
    import types as pytypes

    from tests.test_drivers import RTDEDouble

    rtde = RTDEDouble()
    for name, cls in (("rtde_control", "RTDEControlInterface"), ("rtde_receive", "RTDEReceiveInterface")):
        module = pytypes.ModuleType(name)
        setattr(module, cls, lambda host: rtde)
        monkeypatch.setitem(sys.modules, name, module)
    nodes, types = load_nodes(monkeypatch, driver="ur", address="192.0.2.10")
    node = nodes.ArmNode()
    (_, tick), = node.timers
    tick()
    assert messages.joint_state_from_msg(latest(node, "joint_states")).names[0] == "shoulder_pan_joint"
    here = messages.pose_from_msg(latest(node, "ee_pose"))
    far = here.copy()
    far[0] += 0.5  # 50 cm in one command, and out of the box
    node.deliver("target_pose", messages.pose_to_msg(types, far, 0.0, "base"))
    sent, _ = rtde.servo[-1]
    assert 0 < sent[0] - here[0] <= 0.03 + 1e-9  # ur5e.yaml: at most 3 cm per command
    node.deliver("estop", types.cls("std_msgs/msg/Bool")(data=True))
    assert rtde.stops >= 1
    servo_calls = len(rtde.servo)
    node.deliver("target_pose", messages.pose_to_msg(types, here, 0.0, "base"))
    assert len(rtde.servo) == servo_calls  # latched: holds only
    tick()
    assert latest(node, "estop_state").data is True
    node.destroy_node()


def test_arm_node_refuses_an_unknown_driver(monkeypatch):
    nodes, _ = load_nodes(monkeypatch, driver="franka")
    with pytest.raises(ValueError, match="unknown arm driver 'franka'"):
        nodes.ArmNode()
