"""The docker images and compose file, without a docker engine (CI has none): what they copy
exists, the commands they run are this package's, with arguments its launch files declare
and config its loader accepts, and torch is pinned as in setup.py."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from robot_rl.schema import load_config
from tests import launch_double, rclpy_double

REPO = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())


def dockerfile(service: str) -> str:
    build = COMPOSE["services"][service]["build"]
    path = (REPO / "docker" / build["context"]).resolve() / build["dockerfile"]
    assert path.is_file(), path
    return path.read_text()


def test_every_service_builds_from_the_repository_with_a_dockerfile_that_exists():
    assert set(COMPOSE["services"]) == {"learner", "sim-robot", "test-ros"}
    for name in COMPOSE["services"]:
        assert (REPO / "docker" / COMPOSE["services"][name]["build"]["context"]).resolve() == REPO
        dockerfile(name)


@pytest.mark.parametrize("service", ["learner", "sim-robot"])
def test_copied_files_exist_and_torch_is_pinned_as_in_setup_py(service):
    text = dockerfile(service)
    for line in text.splitlines():
        if line.startswith("COPY "):
            sources = [s for s in shlex.split(line)[1:-1] if not s.startswith("--")]  # --chown=...
            assert all((REPO / s).exists() for s in sources), line
    pin = re.search(r'"torch==([\d.]+)"', (REPO / "setup.py").read_text()).group(1)
    assert re.findall(r"torch==([\d.]+)", text) == [pin]


@pytest.mark.parametrize("service", ["learner", "sim-robot"])
def test_each_image_runs_as_a_non_root_user_that_owns_the_run_folders(service):
    lines = [line.strip() for line in dockerfile(service).splitlines()]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users, f"{service}: no USER instruction (it would run as root)"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"{service} runs as {users[-1]}"
    text = dockerfile(service)
    assert re.search(rf"useradd [^\n]*\b{re.escape(user)}\b", text), f"{service}: USER {user} is never created"
    assert re.search(rf"chown {re.escape(user)}:\S+ [^\n]*/runs\b", text), f"{service}: /runs not {user}'s"
    last_from = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    assert lines.index(f"USER {users[-1]}") > last_from  # the final stage's user


def test_the_robot_image_runs_colcon_and_sources_the_workspace():
    text = dockerfile("sim-robot")
    assert "colcon build" in text and "FROM ros:jazzy" in text
    entrypoint = (REPO / "docker" / "ros_entrypoint.sh").read_text()
    assert "source /ws/install/setup.bash" in entrypoint


def test_the_sim_robot_and_learner_commands_load_and_agree(monkeypatch):
    from robot_rl.env.factory import spaces_from_config

    rclpy_double.install(monkeypatch)
    launch_double.install(monkeypatch)
    command = COMPOSE["services"]["sim-robot"]["command"]
    assert command[:3] == ["ros2", "launch", "robot_rl"]
    arguments = dict(a.split(":=", 1) for a in command[4:])
    _, started = launch_double.expand(command[3], **arguments)
    actor = next(n for n in started if n.kwargs["executable"] == "actor_node")
    params = launch_double.node_parameters(actor)
    assert params["learner_address"] == "learner:50051"
    actor_cfg = load_config(params["overrides"], name="train")
    assert actor_cfg.console.host == "0.0.0.0"  # reachable through the published port: behind its own key
    learner = COMPOSE["services"]["learner"]["command"]
    assert learner[:2] == ["robot-rl", "learner"]
    learner_cfg = load_config(learner[2:], name="train")
    assert learner_cfg.learner.address == "0.0.0.0:50051"
    assert spaces_from_config(learner_cfg) == spaces_from_config(actor_cfg)  # networks sized for what it gets


def test_test_ros_runs_the_launch_testing_suite():
    command = COMPOSE["services"]["test-ros"]["command"]
    assert command[:2] == ["bash", "-c"] and command[2].startswith("cd tests/ros && ROBOT_RL_ROS_TESTS=required")
    assert (REPO / "tests" / "ros" / "pytest.ini").is_file()
    assert (REPO / "tests" / "ros" / "test_sim_launch.py").is_file()
