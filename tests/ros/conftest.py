"""Tests on real ROS 2 (rclpy, Fast DDS, ros2 launch, launch_testing): ``make test-ros``.

Each run gets a DDS domain of its own, on loopback only, so that another graph on the
machine (a stray node, a second test run) can neither disturb the tests nor make them
pass. Every process a test starts carries a tag in its environment; the run fails if one
is still alive at the end. Under ``make test-ros`` (ROBOT_RL_ROS_TESTS=required) nothing
may be skipped, and robot_rl must come from the colcon install, not the source tree.
"""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path

REQUIRED = os.environ.get("ROBOT_RL_ROS_TESTS") == "required"


def domains_in_use() -> set[str]:
    used = set()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            variables = environ.read_bytes().split(b"\0")
        except OSError:
            continue
        used.update(v[len(b"ROS_DOMAIN_ID="):].decode() for v in variables if v.startswith(b"ROS_DOMAIN_ID="))
    return used


os.environ.setdefault("ROBOT_RL_ROS_TEST_RUN", uuid.uuid4().hex)
os.environ["ROS_DOMAIN_ID"] = str(random.choice([d for d in range(1, 101) if str(d) not in domains_in_use()]))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("MUJOCO_GL", "egl")

if REQUIRED:
    import launch_testing  # noqa: F401 - make test-ros must not skip: a missing part fails here
    import rclpy  # noqa: F401

    import robot_rl

    assert "/install/robot_rl/" in robot_rl.__path__[0], (
        f"robot_rl is imported from {robot_rl.__path__[0]}, not from the colcon install")


def pytest_report_header(config):
    return f"ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']} (loopback only)"


def pytest_sessionfinish(session, exitstatus):
    try:
        from ros_probe import left_behind
    except ImportError:  # no rclpy or psutil: the ROS tests skipped, nothing was started
        return
    left = left_behind()
    if left:
        print("\nprocesses the tests started and left running (now killed):\n  " + "\n  ".join(left))
        session.exitstatus = 1
