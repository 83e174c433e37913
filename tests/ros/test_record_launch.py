"""``record.launch.py`` through real launch_testing: on the simulated rig, actor_node records
the operator's demonstrations (driven here on the teleop topics) into an EpisodeStore and
exits when it has the episodes it was asked for."""

import atexit
import shutil
import tempfile
import unittest
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs ROS 2: make test-ros")
pytest.importorskip("launch_testing", reason="needs ROS 2's launch_testing: make test-ros")

import launch_testing.asserts  # noqa: E402
import numpy as np  # noqa: E402
from geometry_msgs.msg import PoseStamped, TwistStamped  # noqa: E402
from launch_testing.actions import ReadyToTest  # noqa: E402
from ros_probe import Probe, include, left_behind, running  # noqa: E402

from launch import LaunchDescription  # noqa: E402

EPISODES, MAX_STEPS = 2, 15


@pytest.mark.launch_test
def generate_test_description():
    run = Path(tempfile.mkdtemp(prefix="robot_rl_record_"))
    atexit.register(shutil.rmtree, run, ignore_errors=True)
    return LaunchDescription([
        include("record.launch.py", run_dir=str(run), device="external", console="false",
                config=f"episodes={EPISODES} task.max_steps={MAX_STEPS}"),
        ReadyToTest(),
    ]), {"run": run}


class TestRecord(unittest.TestCase):
    def test_the_operators_episodes_are_recorded(self):
        rclpy.init()
        probe = Probe("record_test")
        try:
            probe.listen(PoseStamped, "ee_pose")
            twist = probe.publisher(TwistStamped, "teleop/twist")
            push = TwistStamped()
            push.twist.linear.x = 0.5
            probe.wait_for(lambda: not running("actor_node"), 120.0, "end of recording (actor_node still running)",
                           each=lambda: twist.publish(push))
        finally:
            probe.close()
            rclpy.shutdown()


@launch_testing.post_shutdown_test()
class TestRecordAfter(unittest.TestCase):
    def test_the_store_holds_the_operators_episodes(self, run):
        from robot_rl.data import EpisodeStore

        with EpisodeStore.open(run / "demos.zarr") as store:
            episodes = store.episodes()
            self.assertEqual([(e.length, e.source, e.complete) for e in episodes], [(MAX_STEPS, "demo", True)] * 2)
            moved = store.load_episode(0)["obs"]["state"]
        self.assertGreater(float(np.ptp(moved[:, 0])), 0.02)  # the operator pushed along x

    def test_every_process_exits_cleanly(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)

    def test_no_process_is_left_behind(self):
        self.assertEqual(left_behind(), [])
