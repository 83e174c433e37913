"""What the launch files start, built from robot_rl's own config so that every node agrees
with the actor: the cameras a ``cameras`` config names (at its resolutions), the arm with
the robot config's safety limits and control rate, the operator's device, the actor.

Used by ``launch/hil_rl.launch.py``, ``record.launch.py`` and ``learner.launch.py``; the
functions here take the launch arguments as plain strings (from ``OpaqueFunction``).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from typing import Any

from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
from launch_ros.actions import Node

from robot_rl.config import config_dir
from robot_rl.schema import load_config

# name: (default, description); `ros2 launch robot_rl <file> --show-args` prints them
ROBOT_ARGUMENTS = {
    "robot": ("sim_ros", "robot config (config/robot/<name>.yaml); sim_ros starts sim_robot_node, a robot with "
                         "backend ros starts camera_node per camera and arm_node"),
    "cameras": ("sim_ros", "camera config (config/cameras/<name>.yaml): names and resolutions of the cameras"),
    "arm": ("ur", "arm_node's driver: ur | xarm"),
    "address": ("192.168.1.10", "the arm controller's IP address"),
    "camera_driver": ("realsense", "camera_node's driver: realsense | opencv"),
    "camera_devices": ("", "per camera, comma-separated in the cameras config's order: RealSense serials or OpenCV "
                           "devices (empty: the only RealSense / devices 0, 1, ...)"),
    "device": ("spacemouse", "the operator's device on teleop_node: keyboard | spacemouse | gamepad; external: no "
                             "teleop_node, another node publishes /teleop/*; none: no operator"),
}
ACTOR_ARGUMENTS = {
    "task": ("labeled", "task config (config/task/<name>.yaml)"),
    "learner": ("127.0.0.1:50051", "the learner's host:port; both sides need the same $ROBOT_RL_TOKEN"),
    "run_dir": ("runs/robot", "where the actor's EpisodeStore and logs go"),
    "console": ("true", "serve the operator console (http://127.0.0.1:8080): true | false"),
    "config": ("", "more robot-rl config overrides, space-separated: 'task.max_steps=80 seed=3'"),
}


LEARNER_ARGUMENTS = {
    "robot": ROBOT_ARGUMENTS["robot"][0:1] + ("robot config the actors run (it sizes the learner's networks)",),
    "cameras": ROBOT_ARGUMENTS["cameras"],
    "task": ACTOR_ARGUMENTS["task"],
    "address": ("0.0.0.0:50051", "where the learner listens for actors (host:port); token: $ROBOT_RL_TOKEN, TLS: "
                                 "config:='learner.tls.cert=... learner.tls.key=...'"),
    "run_dir": ("runs/learner", "the learner's run folder: replay store, checkpoints, logs"),
    "config": ACTOR_ARGUMENTS["config"],
}


SIM_ARGUMENTS = {
    "teleop": ("false", "also start teleop_node: true | false"),
    "device": ("spacemouse", "teleop_node's device: keyboard | spacemouse | gamepad"),
}

# what a value may be, checked before anything starts (launch's conditions read booleans so)
BOOLEANS = ("true", "false", "1", "0")
CHOICES = {"teleop": BOOLEANS, "console": BOOLEANS, "bag": BOOLEANS,
           "device": ("keyboard", "spacemouse", "gamepad", "external", "none"), "arm": ("ur", "xarm"),
           "camera_driver": ("realsense", "opencv")}


class LaunchArgumentError(ValueError):
    """A launch argument with a value this package cannot use; its message is one line."""


# how long launch waits after Ctrl-C before SIGTERM (its default is 5 s): the learner writes its
# checkpoint and closes its replay store, the actor closes its store, which can take longer on
# a loaded machine; a process killed meanwhile would lose that and exit with -15
SHUTDOWN_S = "30"


def declare(arguments: Mapping[str, tuple[str, str]]) -> list[DeclareLaunchArgument]:
    return [DeclareLaunchArgument(name, default_value=default, description=description)
            for name, (default, description) in arguments.items()]


def opaque(build: Any, arguments: Mapping[str, tuple[str, str]]) -> OpaqueFunction:
    """``build(args)`` run at launch time with every launch argument as a string, once they
    are all checked: a bad value stops the launch before any process starts."""

    def function(context: Any) -> list[Any]:
        args = dict(context.launch_configurations)
        check_arguments(args, arguments)
        return build(args)

    return OpaqueFunction(function=function)


def check_arguments(args: Mapping[str, str], arguments: Mapping[str, tuple[str, str]]) -> None:
    """Raise :class:`LaunchArgumentError` for a value outside its choices; warn about names the
    file does not declare (launch itself ignores them; a parent launch file may set its own)."""
    for name in arguments:
        choices = CHOICES.get(name)
        if choices is not None and args[name].strip().lower() not in choices:
            raise LaunchArgumentError(f"{name}:={args[name]} is not one of {' | '.join(choices)}")
    unknown = sorted(set(args) - set(arguments))
    if unknown:
        from launch.logging import get_logger

        get_logger("robot_rl").warning(
            f"launch arguments this file does not declare are ignored: {', '.join(unknown)} "
            f"(it declares {', '.join(arguments)})")


def flag(args: Mapping[str, str], name: str) -> bool:
    """A boolean launch argument (checked by :func:`opaque`)."""
    return args[name].strip().lower() in ("true", "1")


def config_overrides(args: Mapping[str, str]) -> list[str]:
    """The robot-rl config the launch arguments describe, as overrides (the actor's and the learner's)."""
    overrides = [f"robot={args['robot']}", f"cameras={args['cameras']}", f"task={args['task']}"]
    return overrides + shlex.split(args.get("config", ""))


def robot_nodes(args: Mapping[str, str]) -> list[Node]:
    """The robot's nodes: sim_robot_node for the simulated rig, else a camera_node per camera
    and arm_node; and teleop_node (namespace ``teleop``) unless ``device`` is none or external."""
    cfg = load_config([f"robot={args['robot']}", f"cameras={args['cameras']}"])
    if cfg.robot.backend != "ros":
        raise ValueError(f"robot:={args['robot']} is not a ROS robot (backend {cfg.robot.backend!r}); use sim_ros, "
                         f"ur5e or a config/robot file with backend: ros")
    names = list(cfg.cameras)
    nodes = []
    if args["robot"] == "sim_ros":
        height, width = (int(v) for v in cfg.cameras[names[0]].resolution)
        nodes.append(sim_robot_node({"cameras": names, "camera_height": height, "camera_width": width,
                                     "control_hz": float(cfg.robot.control_hz), "safety": cfg.robot.safety}))
    else:
        devices = [d.strip() for d in args["camera_devices"].split(",")] if args["camera_devices"] else []
        if devices and len(devices) != len(names):
            raise ValueError(f"camera_devices names {len(devices)} devices for {len(names)} cameras {names}")
        for i, name in enumerate(names):
            height, width = (int(v) for v in cfg.cameras[name].resolution)
            device = devices[i] if devices else ("" if args["camera_driver"] == "realsense" else str(i))
            nodes.append(Node(package="robot_rl", executable="camera_node", name=f"{name}_camera", output="screen",
                              parameters=[{"driver": args["camera_driver"], "name": name, "device": device,
                                           "width": width, "height": height}]))
        nodes.append(Node(package="robot_rl", executable="arm_node", name="arm", output="screen",
                          parameters=[{"driver": args["arm"], "address": args["address"],
                                       "safety": cfg.robot.safety, "control_hz": float(cfg.robot.control_hz),
                                       "home_pose": [float(v) for v in (*cfg.robot.home_ee_pos,
                                                                                *cfg.robot.home_ee_quat)]}]))
    if args["device"] not in ("none", "external"):
        nodes.append(teleop_node(args["device"]))
    return nodes


def sim_robot_node(parameters: Mapping[str, Any]) -> Node:
    """sim_robot_node with config/ros/sim_robot.yaml, then ``parameters``."""
    return Node(package="robot_rl", executable="sim_robot_node", name="sim_robot", output="screen",
                parameters=[str(config_dir() / "ros" / "sim_robot.yaml"), dict(parameters)])


def teleop_node(device: str) -> Node:
    """teleop_node (namespace ``teleop``) reading ``device``, with config/ros/teleop.yaml."""
    return Node(package="robot_rl", executable="teleop_node", name="teleop", namespace="teleop", output="screen",
                parameters=[str(config_dir() / "ros" / "teleop.yaml"), {"device": device}])


def actor_node(args: Mapping[str, str], mode: str) -> Node:
    """actor_node (``mode`` train or record) on the robot the arguments describe."""
    teleop = "teleop=ros" if args["device"] != "none" else "teleop=none"
    overrides = [*config_overrides(args), teleop, f"console.enabled={str(flag(args, 'console')).lower()}"]
    return Node(package="robot_rl", executable="actor_node", name="actor", output="screen",
                parameters=[{"overrides": overrides, "learner_address": args["learner"], "run_dir": args["run_dir"],
                             "mode": mode}], sigterm_timeout=SHUTDOWN_S)


def learner_process(args: Mapping[str, str]) -> ExecuteProcess:
    """``robot-rl learner`` (not a ROS node: it needs no ROS) for the robot the arguments describe."""
    # -P: a launch started from the source folder must not import the uninstalled tree
    return ExecuteProcess(cmd=[sys.executable, "-P", "-m", "robot_rl.cli", "learner", *config_overrides(args),
                               f"learner.address={args['address']}", f"run_dir={args['run_dir']}"],
                          output="screen", sigterm_timeout=SHUTDOWN_S)
