"""A test double of the few rclpy calls robot_rl's nodes make (named as one: it is not ROS).

It records parameters, publishers, subscriptions, timers and services so a test can fire
timers and deliver messages by hand. Message classes are the real Humble/Jazzy
definitions from rosbags, served under the module names rclpy code imports
(``sensor_msgs.msg``, ``std_msgs.msg``, ...), so a wrong field name fails here as on a robot.
"""

from __future__ import annotations

import logging
import sys
import types as pytypes
from dataclasses import dataclass, field
from typing import Any, ClassVar

from robot_rl.messages import RosbagsTypes

PACKAGES = ("builtin_interfaces", "std_msgs", "sensor_msgs", "geometry_msgs")


@dataclass
class ParameterDescriptor:
    description: str = ""


@dataclass
class QoSProfile:
    depth: int = 10
    reliability: str = "reliable"
    durability: str = "volatile"


@dataclass
class Publisher:
    msg_type: Any
    topic: str
    qos: Any
    sent: list = field(default_factory=list)

    def publish(self, msg: Any) -> None:
        assert isinstance(msg, self.msg_type), f"{self.topic}: {type(msg).__name__} is not {self.msg_type.__name__}"
        self.sent.append(msg)


@dataclass
class Parameter:
    value: Any


class TriggerDouble:
    class Request:
        pass

    class Response:
        success: bool = False
        message: str = ""


class NodeDouble:
    overrides: ClassVar[dict[str, Any]] = {}  # what --ros-args -p name:=value would set

    def __init__(self, name: str):
        self.name = name
        self.parameters: dict[str, tuple[Any, ParameterDescriptor]] = {}
        self.publishers: dict[str, Publisher] = {}
        self.subscriptions: dict[str, tuple[Any, Any, Any]] = {}
        self.timers: list[tuple[float, Any]] = []
        self.services: dict[str, tuple[Any, Any]] = {}
        self.destroyed = False

    def get_name(self) -> str:
        return self.name

    def get_logger(self) -> Any:
        import logging

        return logging.getLogger(f"rclpy_double.{self.name}")

    def declare_parameter(self, name: str, value: Any, descriptor: ParameterDescriptor) -> None:
        assert name not in self.parameters, f"parameter {name} declared twice"
        if name in self.overrides:
            assert type(self.overrides[name]) is type(value), f"parameter {name}: wrong type"
        self.parameters[name] = (value, descriptor)

    def get_parameter(self, name: str) -> Parameter:
        if name not in self.parameters:
            raise KeyError(f"parameter {name!r} was not declared")  # rclpy raises ParameterNotDeclaredException
        return Parameter(self.overrides.get(name, self.parameters[name][0]))

    def create_publisher(self, msg_type: Any, topic: str, qos: Any) -> Publisher:
        assert topic not in self.publishers, f"two publishers on {topic}"
        self.publishers[topic] = Publisher(msg_type, topic, qos)
        return self.publishers[topic]

    def create_subscription(self, msg_type: Any, topic: str, callback: Any, qos: Any) -> None:
        self.subscriptions[topic] = (msg_type, callback, qos)

    def create_timer(self, period: float, callback: Any) -> None:
        self.timers.append((period, callback))

    def create_service(self, srv_type: Any, name: str, callback: Any) -> None:
        self.services[name] = (srv_type, callback)

    def destroy_node(self) -> None:
        self.destroyed = True

    # for tests
    def deliver(self, topic: str, msg: Any) -> None:
        msg_type, callback, _ = self.subscriptions[topic]
        assert isinstance(msg, msg_type), f"{topic} takes {msg_type.__name__}"
        callback(msg)

    def call(self, service: str) -> Any:
        srv_type, callback = self.services[service]
        return callback(srv_type.Request(), srv_type.Response())


def install(monkeypatch, distro: str = "jazzy") -> RosbagsTypes:
    """Put the double and the message modules in sys.modules; returns the message types."""
    types = RosbagsTypes(distro)

    def module(name: str, **attrs: Any) -> None:
        mod = pytypes.ModuleType(name)
        mod.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, mod)

    for package in PACKAGES:
        prefix = f"{package}/msg/"
        messages = {n[len(prefix):]: cls for n, cls in types.store.types.items() if n.startswith(prefix)}
        module(package)
        module(f"{package}.msg", **messages)
    module("std_srvs")
    module("std_srvs.srv", Trigger=TriggerDouble)
    module("rcl_interfaces")
    module("rcl_interfaces.msg", ParameterDescriptor=ParameterDescriptor)
    state = {"ok": False}
    module("rclpy", init=lambda args=None: state.update(ok=True), ok=lambda: state["ok"],
           shutdown=lambda: state.update(ok=False), try_shutdown=lambda: state.update(ok=False),
           spin=lambda node: None)
    module("rclpy.executors", ExternalShutdownException=type("ExternalShutdownException", (Exception,), {}))
    module("rclpy.logging", get_logger=logging.getLogger)
    module("rclpy.node", Node=NodeDouble)
    module("rclpy.qos", QoSProfile=QoSProfile, qos_profile_sensor_data=QoSProfile(5, "best_effort"),
           ReliabilityPolicy=pytypes.SimpleNamespace(RELIABLE="reliable", BEST_EFFORT="best_effort"),
           DurabilityPolicy=pytypes.SimpleNamespace(TRANSIENT_LOCAL="transient_local", VOLATILE="volatile"))
    monkeypatch.delitem(sys.modules, "robot_rl.ros.nodes", raising=False)
    return types
