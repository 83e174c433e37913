"""The nodes on real rclpy and DDS, without launch: sim_robot_node in its own process, probed by
a node here (topics at rate, a command moves the arm, a stale command halts it, the e-stop
latches until the reset service), and actor_node learning over those topics with a learner.

They need rclpy and the standard messages. Where ROS 2 is not installed they skip; a
machine without ROS can run them with the ROS 2 Jazzy wheels from PyPI:

    pip install "ros-jazzy-rclpy[fastrtps]" ros-jazzy-std-msgs ros-jazzy-sensor-msgs \\
        ros-jazzy-geometry-msgs ros-jazzy-std-srvs ros-jazzy-rcl-interfaces
    pytest tests/ros/test_nodes_rclpy.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs ROS 2 (rclpy): see this file's docstring")

from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Bool, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def start(main: str, *params: str, env: dict | None = None) -> subprocess.Popen:
    args = [a for p in params for a in ("-p", p)]
    return subprocess.Popen([sys.executable, "-c", f"from robot_rl.ros.nodes import {main}; {main}()",
                             "--ros-args", *args], env={**os.environ, "MUJOCO_GL": "egl", **(env or {})})


def stop(process: subprocess.Popen) -> int:
    process.terminate()
    return process.wait(20)


@pytest.fixture(scope="module")
def probe():
    """The sim robot node in its own process and a node here to talk to it."""
    sim = start("sim_robot_main", "camera_height:=32", "camera_width:=32")
    rclpy.init()
    node = rclpy.create_node("probe")
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.shutdown()
        assert stop(sim) in (0, -15), "sim_robot_node did not shut down cleanly"


def spin(node, seconds, each=None, every=0.1):
    """Spin for ``seconds``, calling ``each`` every ``every`` seconds (commands at the control rate)."""
    deadline, due = time.monotonic() + seconds, 0.0
    while (now := time.monotonic()) < deadline:
        if each and now >= due:
            each()
            due = now + every
        rclpy.spin_once(node, timeout_sec=0.01)


def listen(node, msg_type, topic, qos=10):
    got = []
    node.create_subscription(msg_type, topic, got.append, qos)
    return got


def test_topics_appear_at_rate_a_command_moves_the_arm_and_a_stale_one_halts_it(probe):
    poses, images = listen(probe, PoseStamped, "ee_pose"), listen(probe, Image, "front/image_raw",
                                                                  qos_profile_sensor_data)
    status = listen(probe, String, "safety_status")
    target = probe.create_publisher(PoseStamped, "target_pose", 1)
    spin(probe, 3.0)  # discovery
    poses.clear(), images.clear()
    spin(probe, 4.0)
    assert len(poses) >= 30 and len(images) >= 30  # 10 Hz each
    assert (images[-1].height, images[-1].width, images[-1].encoding) == (32, 32, "rgb8")
    goal = poses[-1]
    start_z = goal.pose.position.z
    goal.pose.position.z += 0.04
    spin(probe, 4.0, each=lambda: target.publish(goal))
    assert abs(poses[-1].pose.position.z - goal.pose.position.z) < 0.01, (start_z, poses[-1].pose.position.z)
    spin(probe, 1.0)  # no command for longer than the 0.2 s watchdog timeout
    assert json.loads(status[-1].data)["halted"] is True


def test_the_estop_latches_until_the_reset_service(probe):
    estop = probe.create_publisher(Bool, "estop", LATCHED)
    state = listen(probe, Bool, "estop_state", LATCHED)
    estop.publish(Bool(data=True))
    spin(probe, 1.0)
    assert state[-1].data is True
    estop.publish(Bool(data=False))  # a false on the topic is not a reset
    spin(probe, 0.5)
    assert state[-1].data is True
    reset = probe.create_client(Trigger, "reset_estop")
    assert reset.wait_for_service(timeout_sec=5.0)
    future = reset.call_async(Trigger.Request())
    rclpy.spin_until_future_complete(probe, future, timeout_sec=5.0)
    assert future.result().success and "latched by ros" in future.result().message
    spin(probe, 0.5)
    assert state[-1].data is False


def test_actor_node_learns_over_the_topics_of_sim_robot_node(probe, tmp_path):
    from robot_rl.data import EpisodeStore
    from tests.test_ros_actor import SIM_AS_ROS, TINY_LEARNER
    from tests.test_train import _free_port, _wait_for

    port, token = _free_port(), "rclpy-test-token"
    env = {"ROBOT_RL_TOKEN": token}
    learner = subprocess.Popen([sys.executable, "-m", "robot_rl.cli", "learner", *SIM_AS_ROS, *TINY_LEARNER,
                                f"learner.address=127.0.0.1:{port}", f"run_dir={tmp_path}"],
                               env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    overrides = [o for o in SIM_AS_ROS if o != "teleop=ros"] + ["teleop=none", *TINY_LEARNER,
                                                               "train.env_steps=40", "train.rate_hz=10.0"]
    try:
        _wait_for(lambda: (tmp_path / "learner.json").exists(), 120, "the learner")
        actor = start("actor_main", f"overrides:={json.dumps(overrides)}", f"learner_address:=127.0.0.1:{port}",
                      f"run_dir:={tmp_path}", env=env)
        assert actor.wait(180) == 0, "actor_node failed"
    finally:
        learner.terminate()
        learner.wait(60)
    with EpisodeStore.open(tmp_path / "actor-0.zarr") as store:
        assert store.num_steps == 40
