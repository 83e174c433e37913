"""What the tests on real ROS 2 share: a probe node that waits for discovery before it counts
anything, the processes a test run started (found by a tag in their environment, so an
orphan re-parented to init is found too), and ``ros2 launch`` in its own process group.

Fast DDS discovery takes 0.2 to 4 s here: a subscription counts messages only after its
first one has arrived, never in a fixed window right after it is created.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

RUN_TAG = "ROBOT_RL_ROS_TEST_RUN"  # set by conftest.py; every process the tests start inherits it
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
DISCOVERY_TIMEOUT = 30.0


class Probe:
    """An rclpy node in the test process that subscribes, publishes and waits."""

    def __init__(self, name: str):
        self.node = rclpy.create_node(name)

    def close(self) -> None:
        self.node.destroy_node()

    def listen(self, msg_type: Any, topic: str, qos: Any = 10, timeout: float = DISCOVERY_TIMEOUT) -> list[Any]:
        """Every message on ``topic`` from now on, once the first has arrived (discovery done)."""
        got: list[Any] = []
        self.node.create_subscription(msg_type, topic, got.append, qos)
        self.wait_for(lambda: got, timeout, f"first message on {topic}")
        return got

    def publisher(self, msg_type: Any, topic: str, qos: Any = 1) -> Any:
        """A publisher on ``topic`` once a subscriber has matched it (discovery done)."""
        publisher = self.node.create_publisher(msg_type, topic, qos)
        self.wait_for(lambda: publisher.get_subscription_count() > 0, DISCOVERY_TIMEOUT,
                      f"subscriber to {topic}")
        return publisher

    def spin(self, seconds: float, each: Callable[[], None] | None = None, every: float = 0.05) -> None:
        """Spin for ``seconds``, calling ``each`` every ``every`` seconds."""
        deadline, due = time.monotonic() + seconds, 0.0
        while (now := time.monotonic()) < deadline:
            if each is not None and now >= due:
                each()
                due = now + every
            rclpy.spin_once(self.node, timeout_sec=0.01)

    def wait_for(self, condition: Callable[[], Any], timeout: float, what: str,
                 each: Callable[[], None] | None = None, every: float = 0.05) -> Any:
        """Spin until ``condition()`` is truthy (and return it); fail naming ``what`` after ``timeout``."""
        deadline, due = time.monotonic() + timeout, 0.0
        while (now := time.monotonic()) < deadline:
            if (value := condition()):
                return value
            if each is not None and now >= due:
                each()
                due = now + every
            rclpy.spin_once(self.node, timeout_sec=0.02)
        raise AssertionError(f"no {what} within {timeout:.0f} s")


def started_processes() -> list[psutil.Process]:
    """Live processes that a test of this run started (directly or not), this one excluded."""
    tag = os.environ[RUN_TAG]
    found = []
    for process in psutil.process_iter():
        try:
            if process.pid != os.getpid() and process.status() != psutil.STATUS_ZOMBIE \
                    and process.environ().get(RUN_TAG) == tag:
                found.append(process)
        except psutil.Error:  # gone, a zombie by now, or not ours to read
            continue
    return found


def running(executable: str) -> list[psutil.Process]:
    """The started processes whose command line names ``executable`` (e.g. actor_node)."""
    found = []
    for process in started_processes():
        try:
            if executable in " ".join(process.cmdline()):
                found.append(process)
        except psutil.Error:  # it exited meanwhile
            continue
    return found


def left_behind(grace: float = 10.0) -> list[str]:
    """The started processes still alive after ``grace`` seconds, killed, as 'pid command' lines."""
    deadline = time.monotonic() + grace
    while (alive := started_processes()) and time.monotonic() < deadline:
        time.sleep(0.2)
    lines = []
    for process in alive:
        try:
            lines.append(f"{process.pid} {' '.join(process.cmdline())[:200]}")
            process.kill()
        except psutil.Error:
            continue
    return lines


def include(launch_file: str, **arguments: str) -> Any:
    """This package's installed ``launch_file`` (found through the ament index) with ``arguments``."""
    from ament_index_python.packages import get_package_share_directory
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    path = Path(get_package_share_directory("robot_rl")) / "launch" / launch_file
    return IncludeLaunchDescription(PythonLaunchDescriptionSource(str(path)), launch_arguments=arguments.items())


class Ros2Launch:
    """``ros2 launch robot_rl ...`` in its own process group, as a terminal would run it; its
    output goes to ``log`` (a file, read back by :attr:`output`)."""

    def __init__(self, *args: str, log: Path):
        self.log = log
        with open(log, "w") as out:
            self.process = subprocess.Popen(["ros2", "launch", "robot_rl", *args], stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def output(self) -> str:
        return self.log.read_text()

    def wait(self, timeout: float) -> int:
        """Launch's exit code; after ``timeout`` seconds the whole group is killed and the test fails."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError(f"ros2 launch still running after {timeout:.0f} s:\n{self.output}") from None

    def interrupt(self, timeout: float = 60.0) -> int:
        """Ctrl-C as a terminal sends it (SIGINT to the whole process group: launch and every
        node get one, then launch sends its own); launch's exit code."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
