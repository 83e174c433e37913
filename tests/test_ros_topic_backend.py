"""RobotEnv over topics: the actor's TopicBackend talking to the arm and camera bridges of
the simulated rig, every message passing through the real CDR wire format (rosbags)."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl.drivers.base import DriverError
from robot_rl.env.image import CropResize
from robot_rl.env.robot_env import ActionSpec, RobotEnv
from robot_rl.messages import RosbagsTypes
from robot_rl.ros.bridges import ArmServer, CameraStream
from robot_rl.ros.topic_backend import TopicArm, TopicBackend, TopicCamera
from robot_rl.safety import load_limits
from robot_rl.sim.backend import SimBackend
from robot_rl.sim.simulation import ARM_JOINTS
from robot_rl.sim.tasks import ReachTask, Region


class SimGraph:
    """The simulated rig's node side and the actor side, joined by direct message delivery
    (a stand-in for ROS's transport); time is the simulator's."""

    def __init__(self):
        self.types = RosbagsTypes("jazzy")
        self.sim = SimBackend({"front": (32, 32)})
        self.sim.reset(np.random.default_rng(0))
        self.server = ArmServer(self.sim.arm, self.types, ARM_JOINTS)
        self.stream = CameraStream(self.sim.cameras["front"], self.types, "front_optical")
        clock = lambda: self.sim.sim.time  # noqa: E731
        self.camera = TopicCamera("front", wait=0.0, clock=clock)
        self.arm = TopicArm(ARM_JOINTS, self.sim.arm.home_pose, self.types, send=self.deliver_command,
                            wait=0.0, clock=clock, stamp=clock)
        self.sent = 0

    def wire(self, msg):
        return self.types.deserialize(self.types.serialize(msg), msg.__msgtype__)

    def deliver_command(self, msg):
        self.sent += 1
        self.server.on_target_pose(self.wire(msg))

    def pump(self, duration=0.0):
        """Let ``duration`` of robot time pass, then deliver every topic's newest message."""
        if duration:
            self.sim.advance(duration)
        routes = {"joint_states": self.arm.on_joint_state, "ee_pose": self.arm.on_ee_pose,
                  "wrench": self.arm.on_wrench}
        for topic, msg in self.server.tick():
            if topic in routes:
                routes[topic](self.wire(msg))
        for topic, msg in self.stream.tick():
            {"image_raw": self.camera.on_image, "camera_info": self.camera.on_camera_info}[topic](self.wire(msg))


class PumpedBackend(TopicBackend):
    """TopicBackend whose waiting lets the simulated robot's time pass."""

    def __init__(self, graph: SimGraph, **kwargs):
        super().__init__({"front": graph.camera}, graph.arm, load_limits("sim_panda", ARM_JOINTS), 0.1,
                         sleep=graph.pump, clock=lambda: graph.sim.sim.time, **kwargs)
        self.graph = graph

    def advance(self, duration):
        self.graph.pump(duration)


def test_an_episode_runs_through_topics_and_the_arm_follows():
    graph = SimGraph()
    graph.pump()
    far = Region((0.3, 0.3, 0.3), (0.3, 0.3, 0.3))  # a target off the arm's path: the episode runs on
    task = ReachTask(graph.sim.sim, far, far, success_radius=0.02)
    env = RobotEnv(PumpedBackend(graph, start_noise=(0.02, 0.02, 0.02)), task, ActionSpec(pos_step=0.02, gripper=False),
                   {"front": CropResize((16, 16))}, proprio=["ee_pos"], max_steps=20)
    obs, _ = env.reset(seed=3)
    assert obs["front"].shape == (16, 16, 3) and obs["front"].dtype == np.uint8
    start = obs["state"].copy()
    for _ in range(8):
        obs, *_ = env.step(np.array([1.0, 0.0, 0.0], np.float32))  # +x, 2 cm a step
    moved = obs["state"] - start
    assert 0.1 < moved[0] < 0.17 and abs(moved[1]) < 0.01, moved
    assert np.allclose(obs["state"], graph.sim.sim.ee_pose().pos, atol=1e-6)  # what the topics said is the truth
    assert graph.server.refused == 0 and graph.sent >= 8


def test_reset_waits_for_the_arm_and_gives_up_with_a_clear_line():
    graph = SimGraph()
    graph.pump()
    backend = PumpedBackend(graph, start_noise=(0.05, 0.05, 0.0))
    backend.reset(np.random.default_rng(1))
    assert graph.sent > 0
    graph.server.arm.estop.trigger("test", "arm held")  # the arm will not move now
    stuck = PumpedBackend(graph, start_noise=(0.05, 0.05, 0.0), reset_timeout=0.5)
    with pytest.raises(DriverError, match=r"still 0\.0[0-9]+ m from its start pose after 0\.5 s"):
        stuck.reset(np.random.default_rng(2))


def test_no_messages_yet_is_a_clear_error():
    arm = TopicArm(ARM_JOINTS, np.array([0.4, 0, 0.2, 0, 1, 0, 0]), RosbagsTypes(), send=lambda m: None, wait=0.05)
    with pytest.raises(DriverError, match=r"arm: no end-effector pose on ee_pose within 0\.05 s"):
        arm.state()
    with pytest.raises(DriverError, match="camera 'side': no image on side/image_raw"):
        TopicCamera("side", wait=0.0).read()


def test_teleop_topics_read_as_a_device_that_goes_quiet_when_its_node_does():
    from robot_rl.messages import MessageError
    from robot_rl.ros.topic_backend import TopicTeleop
    from robot_rl.teleop.device import TeleopEvent

    types, now = RosbagsTypes("jazzy"), [100.0]
    teleop = TopicTeleop(stale=0.2, clock=lambda: now[0])
    String, Float32 = types.cls("std_msgs/msg/String"), types.cls("std_msgs/msg/Float32")
    teleop.on_twist(convert_twist(types, [0.5, 0, 0, 0, 0, 0.2]))
    teleop.on_gripper(Float32(data=1.0))
    teleop.on_event(String(data="success"))
    sample = teleop.read()
    assert sample.twist.tolist() == [0.5, 0, 0, 0, 0, 0.2] and sample.gripper == 1.0
    assert sample.events == {TeleopEvent.SUCCESS}
    assert teleop.read().events == frozenset()  # each press once
    now[0] += 0.3  # teleop_node went quiet: the operator is not intervening
    quiet = teleop.read()
    assert not quiet.deflected() and quiet.gripper is None
    with pytest.raises(MessageError, match="unknown event 'sucess'"):
        teleop.on_event(String(data="sucess"))


def convert_twist(types, twist):
    from robot_rl import messages

    return messages.twist_to_msg(types, np.array(twist, dtype=float), 0.0, "teleop")
