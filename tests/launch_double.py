"""A test double of ROS 2's ``launch`` and ``launch_ros`` (named as one: it is not ROS).

It records what a launch file would start instead of starting it: :func:`expand` resolves
the declared arguments (defaults, then what ``ros2 launch ... name:=value`` would set), runs
``OpaqueFunction``s with a context holding them, and returns the ``Node``s and
``ExecuteProcess``es with their keyword arguments. As in real launch, an argument the file
does not declare is passed on (our files warn about it). It covers only what the launch
files use (declared arguments, opaque functions, nodes, processes); the files' config
paths come from ``robot_rl.config.config_dir()``, here the source checkout. Real launch,
a colcon install and the ament index are tested in tests/ros (``make test-ros``).
"""

from __future__ import annotations

import logging
import sys
import types as pytypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


class Recorded:
    def __init__(self, *args: Any, **kwargs: Any):
        self.args, self.kwargs = args, kwargs


class DeclareLaunchArgument(Recorded):
    @property
    def name(self) -> str:
        return self.args[0]


class Node(Recorded):
    pass


class ExecuteProcess(Recorded):
    pass


class OpaqueFunction(Recorded):
    pass


@dataclass
class Context:
    launch_configurations: dict[str, str]


def install(monkeypatch) -> None:
    """Put the double in sys.modules under launch's and launch_ros's module names."""

    def module(name: str, **attrs: Any) -> None:
        mod = pytypes.ModuleType(name)
        mod.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, mod)

    module("launch", LaunchDescription=Recorded)
    module("launch.actions", DeclareLaunchArgument=DeclareLaunchArgument, OpaqueFunction=OpaqueFunction,
           ExecuteProcess=ExecuteProcess)
    module("launch.logging", get_logger=logging.getLogger)
    module("launch_ros")
    module("launch_ros.actions", Node=Node)
    monkeypatch.delitem(sys.modules, "robot_rl.ros.launch_graph", raising=False)


def expand(launch_file: str, **arguments: str) -> tuple[dict[str, DeclareLaunchArgument], list[Recorded]]:
    """(declared arguments by name, what ``launch/<launch_file>`` starts with ``arguments`` set)."""
    import runpy

    description = runpy.run_path(str(REPO / "launch" / launch_file))["generate_launch_description"]()
    declared = {a.name: a for a in description.args[0] if isinstance(a, DeclareLaunchArgument)}
    context = Context({name: a.kwargs["default_value"] for name, a in declared.items()} | arguments)
    started: list[Recorded] = []
    pending = list(description.args[0])
    while pending:
        entity = pending.pop(0)
        if isinstance(entity, OpaqueFunction):
            pending[:0] = entity.kwargs["function"](context)
        elif isinstance(entity, Node | ExecuteProcess):
            started.append(entity)
    return declared, started


def node_parameters(node: Node) -> dict[str, Any]:
    """A Node's parameters as ROS would load them: files (``<name>: ros__parameters:``), then dicts."""
    import yaml

    merged: dict[str, Any] = {}
    for entry in node.kwargs.get("parameters", []):
        if isinstance(entry, dict):
            merged.update(entry)
            continue
        path = Path(entry)
        assert path.is_file(), path
        name, namespace = node.kwargs["name"], node.kwargs.get("namespace", "")
        entries = yaml.safe_load(path.read_text())
        # as ROS matches a params file's keys: a bare name only outside any namespace
        candidates = (f"/{namespace}/{name}",) if namespace else (name, f"/{name}")
        keys = [k for k in (*candidates, f"/**/{name}", "/**") if k in entries]
        assert keys, f"{path} has no parameters for node {name!r} (namespace {namespace!r})"
        merged.update(entries[keys[0]]["ros__parameters"])
    return merged
