"""``sim.launch.py`` through real launch_testing: the topics come at rate, a target pose moves
the simulated arm, a stale command halts it, the e-stop latches until the reset service.
Every count starts after discovery (the first message), never in a fixed window."""

import json
import unittest
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs ROS 2: make test-ros")
pytest.importorskip("launch_testing", reason="needs ROS 2's launch_testing: make test-ros")

import launch_testing.asserts  # noqa: E402
from ament_index_python.packages import get_package_share_directory  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from launch_testing.actions import ReadyToTest  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from ros_probe import LATCHED, Probe, left_behind  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Bool, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from launch import LaunchDescription  # noqa: E402


@pytest.mark.launch_test
def generate_test_description():
    sim = Path(get_package_share_directory("robot_rl")) / "launch" / "sim.launch.py"
    return LaunchDescription([IncludeLaunchDescription(PythonLaunchDescriptionSource(str(sim))), ReadyToTest()])


class TestSimGraph(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rclpy.init()
        cls.probe = Probe("sim_launch_test")
        cls.poses = cls.probe.listen(PoseStamped, "ee_pose")
        cls.status = cls.probe.listen(String, "safety_status")
        cls.target = cls.probe.publisher(PoseStamped, "target_pose")

    @classmethod
    def tearDownClass(cls):
        cls.probe.close()
        rclpy.shutdown()

    def move(self, dz: float, seconds: float) -> float:
        goal = self.poses[-1]
        goal.pose.position.z += dz
        self.probe.spin(seconds, each=lambda: self.target.publish(goal), every=0.1)  # at the control rate
        return goal.pose.position.z

    def test_1_topics_come_at_rate(self):
        images = self.probe.listen(Image, "front/image_raw", qos_profile_sensor_data)
        self.poses.clear(), images.clear()
        self.probe.spin(3.0)
        self.assertGreaterEqual(len(self.poses), 25)  # 10 Hz
        self.assertGreaterEqual(len(images), 20)  # 10 Hz, best effort
        self.assertEqual((images[-1].height, images[-1].width, images[-1].encoding), (128, 128, "rgb8"))

    def test_2_a_target_pose_moves_the_arm_and_a_stale_one_halts_it(self):
        start = self.poses[-1].pose.position.z
        goal = self.move(0.04, 4.0)
        reached = self.poses[-1].pose.position.z
        self.assertLess(abs(reached - goal), 0.01, f"from {start:.3f} to {reached:.3f}, goal {goal:.3f}")
        self.status.clear()
        self.probe.spin(1.0)  # no command for longer than the 0.2 s watchdog timeout
        self.assertTrue(json.loads(self.status[-1].data)["halted"])

    def test_3_the_estop_latches_until_the_reset_service(self):
        estop = self.probe.publisher(Bool, "estop", LATCHED)
        state = self.probe.listen(Bool, "estop_state", LATCHED)
        estop.publish(Bool(data=True))
        self.probe.wait_for(lambda: state[-1].data, 5.0, "latched e-stop on estop_state")
        before = self.poses[-1].pose.position.z
        self.move(-0.04, 2.0)
        self.assertLess(abs(self.poses[-1].pose.position.z - before), 0.005)  # held
        estop.publish(Bool(data=False))  # a false on the topic is not a reset
        self.probe.spin(0.5)
        self.assertTrue(state[-1].data)
        reset = self.probe.node.create_client(Trigger, "reset_estop")
        self.assertTrue(reset.wait_for_service(timeout_sec=10.0))
        future = reset.call_async(Trigger.Request())
        rclpy.spin_until_future_complete(self.probe.node, future, timeout_sec=10.0)
        self.assertTrue(future.result().success)
        self.probe.wait_for(lambda: not state[-1].data, 5.0, "released e-stop on estop_state")


@launch_testing.post_shutdown_test()
class TestSimGraphShutdown(unittest.TestCase):
    def test_every_node_exits_cleanly_on_sigint(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)  # 0: no traceback, no -2

    def test_no_process_is_left_behind(self):
        self.assertEqual(left_behind(), [])
