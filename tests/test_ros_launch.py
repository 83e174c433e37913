"""The launch files, run against a test double of launch and launch_ros (tests/launch_double.py)
that records what they would start: every executable is an installed entry point, every
parameter is one its node declares, with the type ROS would insist on, every argument is
documented for --show-args, and the actor's and learner's configs load and agree."""

from __future__ import annotations

import importlib
import re

import pytest

from robot_rl.env.factory import spaces_from_config
from robot_rl.schema import load_config
from tests import launch_double, rclpy_double
from tests.launch_double import ExecuteProcess, Node, expand, node_parameters

LAUNCH_FILES = ("sim.launch.py", "hil_rl.launch.py", "record.launch.py", "learner.launch.py")


@pytest.fixture
def schemas(monkeypatch):
    """Each executable's declared parameters (name: (default, description)); the doubles installed."""
    rclpy_double.install(monkeypatch)
    launch_double.install(monkeypatch)
    nodes = importlib.import_module("robot_rl.ros.nodes")
    return {"sim_robot_node": nodes.SIM_ROBOT_PARAMETERS, "teleop_node": nodes.TELEOP_PARAMETERS,
            "camera_node": nodes.CAMERA_PARAMETERS, "arm_node": nodes.ARM_PARAMETERS,
            "actor_node": nodes.ACTOR_PARAMETERS}


def ros_type(value):
    """What ROS types a parameter by: bool, int, float, str, or a homogeneous array of one."""
    if isinstance(value, list):
        kinds = {type(v) for v in value}
        assert len(kinds) <= 1, f"mixed array {value!r}"
        return list, kinds.pop() if kinds else None
    return type(value)


def check_nodes(started, schemas):
    entry_points = re.findall(r'"(\w+) = robot_rl\.ros\.nodes:\w+"', (launch_double.REPO / "setup.py").read_text())
    for node in (n for n in started if isinstance(n, Node)):
        executable = node.kwargs["executable"]
        assert node.kwargs["package"] == "robot_rl" and executable in entry_points, executable
        declared = schemas[executable]
        for key, value in node_parameters(node).items():
            assert key in declared, f"{executable} declares no parameter {key!r}"
            default = declared[key][0]
            if not (isinstance(default, list) and not default):
                assert ros_type(value) == ros_type(default), f"{executable}.{key}: {value!r}"


@pytest.mark.parametrize("launch_file", LAUNCH_FILES)
def test_every_argument_is_documented_for_show_args(schemas, launch_file):
    declared, _ = expand(launch_file)
    assert declared
    assert all(a.kwargs.get("description") for a in declared.values()), launch_file


def test_sim_launch_starts_the_sim_robot_and_on_request_the_operators_device(schemas):
    _, started = expand("sim.launch.py")
    assert [n.kwargs["executable"] for n in started] == ["sim_robot_node"]
    _, started = expand("sim.launch.py", teleop="true", device="keyboard")
    assert [n.kwargs["executable"] for n in started] == ["sim_robot_node", "teleop_node"]
    check_nodes(started, schemas)
    teleop = started[1]
    assert teleop.kwargs["namespace"] == "teleop" and node_parameters(teleop)["device"] == "keyboard"
    # the parameter files name every parameter their node declares, and no other
    assert set(node_parameters(started[0])) == set(schemas["sim_robot_node"])


@pytest.mark.parametrize(("launch_file", "argument"), [
    ("sim.launch.py", {"teleop": "yes"}), ("hil_rl.launch.py", {"device": "joystick"}),
    ("hil_rl.launch.py", {"console": "on"}), ("record.launch.py", {"bag": "yes"}),
    ("hil_rl.launch.py", {"robot": "ur6"})])
def test_a_bad_argument_value_stops_the_launch_before_any_node(schemas, launch_file, argument):
    # expand raises out of the opaque function, before it returns any node to start
    with pytest.raises(ValueError, match=f"{next(iter(argument))}|ur6"):
        expand(launch_file, **argument)


def test_an_undeclared_argument_is_passed_on_with_a_warning(schemas, caplog):
    _, started = expand("sim.launch.py", devcie="keyboard")  # real launch ignores it too
    assert [n.kwargs["executable"] for n in started] == ["sim_robot_node"]
    assert "devcie" in caplog.text and "does not declare" in caplog.text


def test_hil_rl_on_the_sim_rig_runs_the_actor_against_sim_robot_node(schemas):
    _, started = expand("hil_rl.launch.py")
    assert [n.kwargs["executable"] for n in started] == ["sim_robot_node", "teleop_node", "actor_node"]
    check_nodes(started, schemas)
    sim, actor = node_parameters(started[0]), node_parameters(started[2])
    cfg = load_config(actor["overrides"], name="train")
    assert cfg.robot.backend == "ros" and cfg.teleop.device == "ros" and cfg.console.enabled
    assert sim["cameras"] == list(cfg.cameras)  # the actor subscribes to what the sim publishes
    assert [sim["camera_height"], sim["camera_width"]] == list(cfg.cameras.front.resolution)
    assert sim["safety"] == cfg.robot.safety and actor["mode"] == "train"


def test_hil_rl_on_a_ur5e_starts_a_camera_node_per_camera_and_the_arm(schemas):
    _, started = expand("hil_rl.launch.py", robot="ur5e", cameras="ros", camera_devices="111,222",
                        address="10.0.0.5", device="none", config="task.max_steps=80 seed=3")
    assert [n.kwargs["executable"] for n in started] == ["camera_node", "camera_node", "arm_node", "actor_node"]
    check_nodes(started, schemas)
    cameras = [node_parameters(n) for n in started[:2]]
    assert [(c["name"], c["device"], c["width"], c["height"]) for c in cameras] == [
        ("front", "111", 640, 480), ("wrist", "222", 640, 480)]
    arm = node_parameters(started[2])
    cfg = load_config(node_parameters(started[3])["overrides"], name="train")
    assert arm["safety"] == cfg.robot.safety == "ur5e" and arm["address"] == "10.0.0.5"
    assert arm["home_pose"][:3] == list(cfg.robot.home_ee_pos)
    assert cfg.teleop.device == "none" and cfg.task.max_steps == 80 and cfg.seed == 3
    with pytest.raises(ValueError, match="1 devices for 2 cameras"):
        expand("hil_rl.launch.py", robot="ur5e", cameras="ros", camera_devices="111")
    with pytest.raises(ValueError, match="not a ROS robot"):
        expand("hil_rl.launch.py", robot="sim", cameras="sim")


def test_record_launch_records_with_the_actor_and_optionally_a_bag(schemas):
    _, started = expand("record.launch.py", run_dir="/data/demos")
    assert node_parameters(started[-1])["mode"] == "record"
    assert not any(isinstance(s, ExecuteProcess) for s in started)
    _, started = expand("record.launch.py", run_dir="/data/demos", bag="true")
    check_nodes(started, schemas)
    bag = [s for s in started if isinstance(s, ExecuteProcess)]
    assert len(bag) == 1 and bag[0].kwargs["cmd"][:5] == ["ros2", "bag", "record", "-a", "-o"]
    assert re.fullmatch(r"/data/demos/bag_\d{8}_\d{6}", bag[0].kwargs["cmd"][5])  # a new folder per session


def test_learner_launch_runs_the_learner_for_the_actors_robot(schemas):
    _, started = expand("learner.launch.py", robot="ur5e", cameras="ros", address="0.0.0.0:6000")
    (learner,) = started
    cmd = learner.kwargs["cmd"]
    assert cmd[1:5] == ["-P", "-m", "robot_rl.cli", "learner"] and "learner.address=0.0.0.0:6000" in cmd
    learner_cfg = load_config([a for a in cmd[5:] if "=" in a], name="train")
    _, actor_started = expand("hil_rl.launch.py", robot="ur5e", cameras="ros")
    actor_cfg = load_config(node_parameters(actor_started[-1])["overrides"], name="train")
    # the learner's networks are sized for the observations the actor sends
    assert spaces_from_config(learner_cfg) == spaces_from_config(actor_cfg)
