"""launch_testing tests of ``sim.launch.py`` against real ROS 2: the topics appear at rate, a
target pose moves the simulated arm, a stale command halts it, the e-stop latches until
the reset service. They need rclpy and launch_testing, so they run in the robot image
(``docker compose -f docker/compose.yaml run --rm test-ros``) and skip cleanly anywhere else.
"""

import json
import time
import unittest

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs ROS 2 (rclpy): run in the robot image")
pytest.importorskip("launch_testing", reason="needs ROS 2 (launch_testing): run in the robot image")

from pathlib import Path  # noqa: E402

from ament_index_python.packages import get_package_share_directory  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from launch_testing.actions import ReadyToTest  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Bool, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from launch import LaunchDescription  # noqa: E402

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


@pytest.mark.launch_test
def generate_test_description():
    sim = Path(get_package_share_directory("robot_rl")) / "launch" / "sim.launch.py"
    return LaunchDescription([IncludeLaunchDescription(PythonLaunchDescriptionSource(str(sim))),
                              ReadyToTest()])


class TestSimGraph(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rclpy.init()

    @classmethod
    def tearDownClass(cls):
        rclpy.shutdown()

    def setUp(self):
        self.node = rclpy.create_node("sim_launch_test")
        self.target = self.node.create_publisher(PoseStamped, "target_pose", 1)

    def tearDown(self):
        self.node.destroy_node()

    def spin_for(self, seconds, each=None):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if each:
                each()
            rclpy.spin_once(self.node, timeout_sec=0.05)

    def listen(self, msg_type, topic, qos=10):
        got = []
        self.node.create_subscription(msg_type, topic, got.append, qos)
        return got

    def pose(self):
        poses = self.listen(PoseStamped, "ee_pose")
        self.spin_for(1.0)
        self.assertTrue(poses, "no ee_pose within 1 s")
        return poses[-1]

    def move(self, dz, seconds):
        goal = self.pose()
        goal.pose.position.z += dz
        self.spin_for(seconds, each=lambda: self.target.publish(goal))
        return goal.pose.position.z

    def status(self):
        statuses = self.listen(String, "safety_status")
        self.spin_for(0.5)
        return json.loads(statuses[-1].data)

    def test_1_topics_appear_at_rate(self):
        poses = self.listen(PoseStamped, "ee_pose")
        images = self.listen(Image, "front/image_raw", qos_profile_sensor_data)
        self.spin_for(5.0)  # the first second may go on discovery
        self.assertGreaterEqual(len(poses), 30)  # 10 Hz
        self.assertGreaterEqual(len(images), 20)  # 10 Hz, best effort
        self.assertEqual((images[-1].height, images[-1].width, images[-1].encoding), (128, 128, "rgb8"))

    def test_2_a_target_pose_moves_the_arm_and_a_stale_one_halts_it(self):
        start = self.pose().pose.position.z
        goal = self.move(0.04, 3.0)
        reached = self.pose().pose.position.z
        self.assertLess(abs(reached - goal), 0.01, f"from {start:.3f} to {reached:.3f}, goal {goal:.3f}")
        self.spin_for(0.5)  # no command for longer than the 0.2 s watchdog timeout
        self.assertTrue(self.status()["halted"])

    def test_3_estop_latches_until_the_reset_service(self):
        estop = self.node.create_publisher(Bool, "estop", LATCHED)
        state = self.listen(Bool, "estop_state", LATCHED)
        estop.publish(Bool(data=True))
        self.spin_for(1.0)
        self.assertTrue(state[-1].data)
        before = self.pose().pose.position.z
        self.move(-0.04, 2.0)
        self.assertLess(abs(self.pose().pose.position.z - before), 0.005)  # held
        estop.publish(Bool(data=False))  # a false on the topic is not a reset
        self.spin_for(0.5)
        self.assertTrue(state[-1].data)
        reset = self.node.create_client(Trigger, "reset_estop")
        self.assertTrue(reset.wait_for_service(timeout_sec=5.0))
        future = reset.call_async(Trigger.Request())
        rclpy.spin_until_future_complete(self.node, future, timeout_sec=5.0)
        self.assertTrue(future.result().success)
        self.spin_for(0.5)
        self.assertFalse(state[-1].data)
