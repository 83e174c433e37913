"""actor_node end to end, through the rclpy test double: a real learner (subprocess, gRPC on
loopback), the simulated rig's sim_robot_node and actor_node, joined by a stand-in for ROS's
transport that hands every published message to the other node's subscription; the
operator's device is teleop_node's topics."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from robot_rl import messages
from robot_rl.config import ConfigError
from robot_rl.data import EpisodeStore
from robot_rl.data.spec import LABEL_SUCCESS
from robot_rl.teleop.device import TeleopEvent
from tests import rclpy_double
from tests.test_train import _free_port, _wait_for

# the simulated rig seen as a ROS robot (sim_robot_node's topics)
SIM_AS_ROS = ["robot=sim_ros", "cameras=sim_ros", "cameras.front.resolution=[32,32]", "cameras.front.size=[32,32]",
              "cameras.wrist.resolution=[32,32]", "cameras.wrist.size=[32,32]", "task=labeled", "task.max_steps=15",
              "teleop=ros"]
TINY_LEARNER = ["train.random_steps=50", "learner.warmup_transitions=50", "learner.batch_size=16",
                "learner.publish_every=10", "agent.hidden=[32,32]", "agent.encoder_features=16",
                "logging.wandb=disabled", "train.threads=1"]
STEPS = 60


class Transport(threading.Thread):
    """Stands in for ROS's transport between the two nodes: runs the sim node's timers (its
    renderer lives in this thread) and delivers what each node publishes to the other's
    subscriptions. After the actor's 20th command the operator pushes the device along +y
    for a while, then presses success."""

    def __init__(self, nodes, actor, types):
        super().__init__(daemon=True)
        self.nodes, self.actor, self.types = nodes, actor, types
        self.done, self.error = threading.Event(), None
        self.started_sim = threading.Event()

    def run(self):
        try:
            self._run()
        except Exception as e:  # handed to the test thread
            self.error = e
            self.started_sim.set()

    def _run(self):
        sim = self.nodes.SimRobotNode()
        (_, control), (_, cameras) = sim.timers
        self.started_sim.set()
        delivered: dict[tuple[int, str], int] = {}
        twist = messages.twist_to_msg(self.types, np.array([0.0, 1.0, 0, 0, 0, 0]), time.time(), "teleop")
        String = self.types.cls("std_msgs/msg/String")
        pressed = False
        try:
            while not self.done.is_set():
                control()
                cameras()
                for source, sink in ((sim, self.actor), (self.actor, sim)):
                    for topic, publisher in list(source.publishers.items()):
                        if topic not in sink.subscriptions:
                            continue
                        start = delivered.get((id(source), topic), 0)
                        sent = publisher.sent[start:]
                        delivered[(id(source), topic)] = start + len(sent)
                        for msg in sent:
                            sink.deliver(topic, msg)
                commands = len(self.actor.publishers["target_pose"].sent)
                if 20 <= commands < 30:
                    self.actor.deliver("teleop/twist", twist)
                elif commands >= 30 and not pressed:
                    self.actor.deliver("teleop/events", String(data="success"))
                    pressed = True
                time.sleep(0.01)
        finally:
            sim.destroy_node()


@pytest.mark.slow
def test_actor_node_learns_over_topics_with_the_operator_on_teleop_topics(monkeypatch, tmp_path):
    port, token = _free_port(), "ros-actor-token"
    monkeypatch.setenv("ROBOT_RL_TOKEN", token)
    types = rclpy_double.install(monkeypatch)
    monkeypatch.setattr(rclpy_double.NodeDouble, "overrides", {
        "overrides": [*SIM_AS_ROS, *TINY_LEARNER, f"train.env_steps={STEPS}", "train.rate_hz=20.0"],
        "learner_address": f"127.0.0.1:{port}", "run_dir": str(tmp_path), "camera_height": 32, "camera_width": 32})
    nodes = importlib.import_module("robot_rl.ros.nodes")
    log = open(tmp_path / "learner.log", "ab")
    learner = subprocess.Popen(
        [sys.executable, "-m", "robot_rl.cli", "learner", *SIM_AS_ROS, *TINY_LEARNER,
         f"learner.address=127.0.0.1:{port}", f"run_dir={tmp_path}"],
        env={**os.environ, "ROBOT_RL_TOKEN": token}, stdout=log, stderr=subprocess.STDOUT)
    actor = nodes.ActorNode()
    assert {topic for topic in actor.subscriptions} == {
        "joint_states", "ee_pose", "wrench", "front/image_raw", "front/camera_info", "wrist/image_raw",
        "wrist/camera_info", "teleop/twist", "teleop/gripper", "teleop/events"}
    assert actor.subscriptions["front/image_raw"][2].reliability == "best_effort"  # sensor-data QoS
    assert all(descriptor.description for _, descriptor in actor.parameters.values())
    transport = Transport(nodes, actor, types)
    transport.start()
    try:
        transport.started_sim.wait(30)
        assert transport.error is None, transport.error
        _wait_for(lambda: (tmp_path / "learner.json").exists() or learner.poll() is not None, 120, "the learner")
        report = actor.work()
    finally:
        transport.done.set()
        transport.join(timeout=10)
        learner.terminate()
        learner.wait(timeout=60)
        log.close()
    assert transport.error is None, transport.error
    assert report.env_steps == STEPS
    with EpisodeStore.open(tmp_path / "actor-0.zarr") as store:
        assert store.num_steps == STEPS
        episodes = [store.load_episode(e.index) for e in store.episodes()]
        finished = sum(e.length for e in store.episodes() if e.complete)
    steps = {k: np.concatenate([e[k] for e in episodes]) for k in ("intervention", "label", "reward")}
    assert steps["intervention"].sum() >= 3  # the operator's push took over
    labelled = np.flatnonzero(steps["label"] == LABEL_SUCCESS)
    assert len(labelled) == 1 and steps["reward"][labelled[0]] == 1.0  # the label is the reward on hardware
    assert steps["reward"].sum() == 1.0  # and nothing else earns it: the env sees no ground truth
    with EpisodeStore.open(tmp_path / "learner" / "replay.zarr") as store:
        assert finished >= 30 and store.num_steps >= finished  # every finished episode reached the learner


def test_actor_node_records_the_operators_demonstrations(monkeypatch, tmp_path):
    types = rclpy_double.install(monkeypatch)
    monkeypatch.setattr(rclpy_double.NodeDouble, "overrides", {
        "overrides": [*SIM_AS_ROS, "task.max_steps=50", "episodes=1", "robot.control_hz=20.0"], "mode": "record",
        "run_dir": str(tmp_path), "camera_height": 32, "camera_width": 32})
    nodes = importlib.import_module("robot_rl.ros.nodes")
    actor = nodes.ActorNode()
    transport = Transport(nodes, actor, types)
    transport.start()
    try:
        transport.started_sim.wait(30)
        episodes = actor.work()
    finally:
        transport.done.set()
        transport.join(timeout=10)
    assert transport.error is None, transport.error
    assert len(episodes) == 1 and episodes[0].success
    with EpisodeStore.open(tmp_path / "demos.zarr") as store:
        (info,) = store.episodes()
        episode = store.load_episode(info.index)
    assert info.source == "demo" and info.success and info.length < 50  # ended by the label
    assert episode["intervention"].all()  # every step of a demonstration is the operator's
    pushed = episode["action"][:, 1]  # +y while the operator pushed, still otherwise
    assert (pushed > 0.5).sum() >= 3 and np.allclose(episode["action"][:5], 0.0)


def test_a_malformed_message_is_refused_and_counted_not_raised(monkeypatch):
    types = rclpy_double.install(monkeypatch)
    monkeypatch.setattr(rclpy_double.NodeDouble, "overrides", {"overrides": SIM_AS_ROS})
    actor = importlib.import_module("robot_rl.ros.nodes").ActorNode()
    String = types.cls("std_msgs/msg/String")
    actor.deliver("teleop/events", String(data="sucess"))  # a typo at `ros2 topic pub`
    actor.deliver("teleop/events", String(data="success"))
    assert actor.refused == 1 and actor.topics.teleop.read().events == {TeleopEvent.SUCCESS}


def test_actor_node_refuses_a_simulated_robot(monkeypatch):
    rclpy_double.install(monkeypatch)
    monkeypatch.setattr(rclpy_double.NodeDouble, "overrides", {"overrides": ["robot=sim"]})
    nodes = importlib.import_module("robot_rl.ros.nodes")
    with pytest.raises(ConfigError, match=r"robot\.backend"):
        nodes.ActorNode()


def test_a_ros_robot_outside_actor_node_is_a_clear_error():
    from robot_rl.robots import make_env
    from robot_rl.schema import load_config

    with pytest.raises(ConfigError, match="actor_node"):
        make_env(load_config(["robot=ur5e", "cameras=ros", "task=labeled"]))
