"""``ros2 launch robot_rl ...`` as a user types it, on the colcon install: every argument is
documented for --show-args, a bad argument stops the launch before any process starts, a
node whose work fails exits non-zero with its error in the launch log, and Ctrl-C or
SIGTERM stops every node with exit code 0 and no traceback."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess

import pytest

pytest.importorskip("rclpy", reason="needs ROS 2: make test-ros")
pytest.importorskip("launch_testing", reason="needs ROS 2's launch toolchain: make test-ros")

import rclpy
from geometry_msgs.msg import PoseStamped, TwistStamped
from ros_probe import Probe, Ros2Launch, left_behind, running

from robot_rl.ros import launch_graph

ARGUMENTS = {
    "sim.launch.py": launch_graph.SIM_ARGUMENTS,
    "hil_rl.launch.py": {**launch_graph.ROBOT_ARGUMENTS, **launch_graph.ACTOR_ARGUMENTS},
    "record.launch.py": {**launch_graph.ROBOT_ARGUMENTS, **launch_graph.ACTOR_ARGUMENTS, "bag": None},
    "learner.launch.py": launch_graph.LEARNER_ARGUMENTS,
}


@pytest.fixture(autouse=True)
def nothing_left_behind():
    yield
    assert left_behind() == [], "the test left processes running"


@pytest.mark.parametrize("launch_file", sorted(ARGUMENTS))
def test_show_args_lists_every_argument_with_a_description(launch_file):
    shown = subprocess.run(["ros2", "launch", "robot_rl", launch_file, "--show-args"], capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    listed = dict(re.findall(r"^    '(\w+)':\n        (.+)$", shown.stdout, re.MULTILINE))
    assert set(listed) == set(ARGUMENTS[launch_file]), shown.stdout
    assert all(len(text) > 10 and "no description" not in text for text in listed.values()), listed


def test_a_bad_argument_stops_the_launch_before_any_process_starts(tmp_path):
    launch = Ros2Launch("sim.launch.py", "teleop:=yes", log=tmp_path / "launch.log")
    assert launch.wait(60) != 0
    output = launch.output
    assert "teleop:=yes is not one of true | false" in output
    assert "process started" not in output


def test_a_node_whose_work_fails_exits_non_zero_with_the_error_in_the_launch_log(tmp_path):
    # a UR5e that is not there: actor_node's env waits 5 s for the arm's pose, then fails;
    # camera_node and arm_node fail at once (no camera at that path, no ur_rtde)
    launch = Ros2Launch("record.launch.py", "robot:=ur5e", "cameras:=ros", "device:=external", "console:=false",
                        "camera_driver:=opencv", "camera_devices:=/nonexistent/0,/nonexistent/1",
                        "address:=127.0.0.1", f"run_dir:={tmp_path}", log=tmp_path / "launch.log")
    launch.wait(120)
    output = launch.output
    assert re.search(r"\[actor_node-\d\].*DriverError: arm: no end-effector pose on ee_pose within 5\.0 s", output), \
        output
    assert re.search(r"\[actor_node-\d\]: process has died \[pid \d+, exit code 1,", output), output
    assert "Traceback" not in output, output  # the traceback is at debug level


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_and_ctrl_c_stop_every_node_cleanly(tmp_path):
    os.environ["ROBOT_RL_TOKEN"] = "interrupt-test"  # an actor with no learner to reach: it acts and retries
    launch = Ros2Launch("hil_rl.launch.py", "device:=external", "console:=false", f"learner:=127.0.0.1:{free_port()}",
                        f"run_dir:={tmp_path}", log=tmp_path / "launch.log")
    try:
        rclpy.init()
        probe = Probe("interrupt_test")
        try:
            probe.listen(PoseStamped, "ee_pose")  # sim_robot_node is up
            probe.publisher(TwistStamped, "teleop/twist")  # actor_node is up (it subscribed)
        finally:
            probe.close()
            rclpy.shutdown()
        (actor,) = running("actor_node")
        actor.send_signal(signal.SIGTERM)  # as a process manager stops it
        actor.wait(30)  # not our child: its exit code is in launch's log
        code = launch.interrupt()  # Ctrl-C in the terminal: SIGINT to launch and every node
    finally:
        launch.close()
    output = launch.output
    assert code == 0, output
    assert "Traceback" not in output and "exit code" not in output, output
    assert re.search(r"\[actor_node-\d\]: process has finished cleanly", output), output  # after SIGTERM
    assert re.search(r"\[sim_robot_node-\d\]: process has finished cleanly", output), output  # after Ctrl-C
