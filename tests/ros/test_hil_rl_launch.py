"""``learner.launch.py`` and ``hil_rl.launch.py`` through real launch_testing: on the simulated
rig, actor_node learns over real topics into the learner on loopback; an operator's
intervention injected on the teleop topics reaches the learner's demo buffer, and the
operator's success label ends the episode."""

import atexit
import json
import os
import secrets
import shutil
import socket
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
from ros_probe import Probe, include, left_behind  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from launch import LaunchDescription  # noqa: E402

STEPS, MAX_STEPS = 200, 40
TINY = (f"task.max_steps={MAX_STEPS} train.env_steps={STEPS} train.random_steps=50 learner.warmup_transitions=50 "
        "learner.batch_size=16 learner.publish_every=10 agent.hidden=[32,32] agent.encoder_features=16 "
        "logging.wandb=disabled train.threads=1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.launch_test
def generate_test_description():
    run = Path(tempfile.mkdtemp(prefix="robot_rl_hil_rl_"))
    atexit.register(shutil.rmtree, run, ignore_errors=True)
    address = f"127.0.0.1:{free_port()}"
    os.environ["ROBOT_RL_TOKEN"] = secrets.token_urlsafe(16)  # both processes inherit it
    return LaunchDescription([
        include("learner.launch.py", address=address, run_dir=str(run / "learner"), config=TINY),
        include("hil_rl.launch.py", learner=address, run_dir=str(run / "actor"), device="external",
                console="false", config=TINY),
        ReadyToTest(),
    ]), {"run": run}


class TestHilRl(unittest.TestCase):
    def test_the_actor_learns_with_an_operator_who_intervenes_and_labels(self, run):
        rclpy.init()
        probe = Probe("hil_rl_test")
        try:
            probe.listen(PoseStamped, "target_pose", timeout=180.0)  # the actor acts
            twist = probe.publisher(TwistStamped, "teleop/twist")
            events = probe.publisher(String, "teleop/events", 10)
            push = TwistStamped()
            push.twist.linear.z = 0.6
            probe.spin(3.0, each=lambda: twist.publish(push))  # the operator takes over for 3 s
            events.publish(String(data="success"))  # and labels the episode a success
            metrics = run / "learner" / "learner" / "metrics.jsonl"
            probe.wait_for(lambda: metrics.exists() and json.loads(metrics.read_text().splitlines()[-1])[
                "env_steps"] >= STEPS, 240.0, f"{STEPS} env steps at the learner")
        finally:
            probe.close()
            rclpy.shutdown()


@launch_testing.post_shutdown_test()
class TestHilRlAfter(unittest.TestCase):
    def test_the_learner_learned_from_every_step_and_the_operators_took_the_demo_buffer(self, run):
        from robot_rl.data import EpisodeStore

        lines = [json.loads(line) for line in (run / "learner" / "learner" / "metrics.jsonl").read_text().splitlines()]
        self.assertGreaterEqual(lines[-1]["env_steps"], STEPS)
        self.assertGreater(lines[-1]["updates"], 0)
        self.assertGreater(lines[-1]["demo_transitions"], 0)  # the intervention steps
        with EpisodeStore.open(run / "learner" / "learner" / "replay.zarr") as replay:
            episodes = [(info, replay.load_episode(info.index)) for info in replay.episodes()]
        intervened = sum(int(np.sum(data["intervention"])) for _, data in episodes)
        self.assertGreater(intervened, 5)
        self.assertEqual(lines[-1]["demo_transitions"], intervened)
        labeled = [info for info, _ in episodes if info.success]
        self.assertTrue(labeled and all(info.length < MAX_STEPS for info in labeled),
                        [(info.length, info.success) for info, _ in episodes])

    def test_every_process_exits_cleanly(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)

    def test_no_process_is_left_behind(self):
        self.assertEqual(left_behind(), [])
