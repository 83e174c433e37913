"""ROS 2 bags (sqlite3 or mcap) into an EpisodeStore, with ``rosbags``: no ROS needed.

A bag holds streams at their own rates (cameras at 30 Hz, arm state at 100 Hz, commands at
the control rate) with jitter. The import lays a grid at the control rate over them, one
tick per step, placed a fraction ``phase`` of a period before each command (the policy
acts on what it has just seen): the step's observation is each stream's newest message
stamped at or before the tick, its action the command sent before the next tick, mapped to
the env's normalised action (the target's offset from the measured pose over the action's
step sizes). Stamps are the messages' header stamps (capture time), not the recorder's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from robot_rl import messages
from robot_rl.drivers.base import ArmState
from robot_rl.env.image import CropResize
from robot_rl.env.robot_env import PROPRIO, STATE_KEY, ActionSpec

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


class BagError(ValueError):
    """A bag that cannot be imported: unreadable, truncated, empty or with the wrong types."""


@dataclass(frozen=True)
class BagTopics:
    """Which topics carry what (arm_node's and camera_node's names by default)."""

    images: dict[str, str] = field(default_factory=lambda: {"front": "front/image_raw", "wrist": "wrist/image_raw"})
    ee_pose: str = "/ee_pose"
    joint_states: str | None = "/joint_states"
    command: str = "/target_pose"


@dataclass
class Stream:
    stamps: np.ndarray  # sorted, seconds
    values: list[Any]

    def at(self, t: float) -> Any:
        """The newest value stamped at or before ``t``."""
        i = int(np.searchsorted(self.stamps, t, side="right")) - 1
        if i < 0:
            raise BagError(f"no message at or before t={t:.3f}")
        return self.values[i]


def _topic(name: str) -> str:
    return name if name.startswith("/") else "/" + name


def read_streams(path: str | Path, topics: BagTopics) -> dict[str, Stream]:
    """Each wanted topic's messages, decoded and sorted by header stamp; clear errors for a
    missing, empty or wrongly typed topic and for a bag that cannot be read."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore

    wanted: dict[str, tuple[str, tuple[str, ...]]] = {
        f"image:{cam}": (_topic(t), IMAGE_TYPES) for cam, t in topics.images.items()}
    wanted["ee_pose"] = (_topic(topics.ee_pose), ("geometry_msgs/msg/PoseStamped",))
    wanted["command"] = (_topic(topics.command), ("geometry_msgs/msg/PoseStamped",))
    if topics.joint_states:
        wanted["joint_states"] = (_topic(topics.joint_states), ("sensor_msgs/msg/JointState",))
    typestore = get_typestore(Stores.ROS2_JAZZY)
    raw: dict[str, list[tuple[float, Any]]] = {key: [] for key in wanted}
    try:
        with Reader(Path(path)) as reader:
            by_topic = {c.topic: c for c in reader.connections}
            for topic, types in wanted.values():
                if topic not in by_topic:
                    raise BagError(f"{path}: no topic {topic} (the bag has {sorted(by_topic)})")
                if by_topic[topic].msgtype not in types:
                    raise BagError(f"{path}: {topic} carries {by_topic[topic].msgtype}, expected {' or '.join(types)}")
            keys = {wanted[k][0]: k for k in wanted}
            connections = [by_topic[t] for t in keys]
            for connection, timestamp, data in reader.messages(connections=connections):
                msg = typestore.deserialize_cdr(data, connection.msgtype)
                stamp = messages.stamp_from_msg(msg.header.stamp) if hasattr(msg, "header") else timestamp * 1e-9
                raw[keys[connection.topic]].append((stamp, msg))
    except BagError:
        raise
    except Exception as e:  # rosbags' own errors: a truncated file, a bad metadata.yaml, an unknown storage
        raise BagError(f"{path}: cannot read the bag ({type(e).__name__}: {e})") from None
    streams = {}
    for key, items in raw.items():
        if not items:
            raise BagError(f"{path}: no messages on {wanted[key][0]}")
        items.sort(key=lambda item: item[0])
        streams[key] = Stream(np.array([s for s, _ in items]), [m for _, m in items])
    return streams


def import_bag(path: str | Path, store: Any, action: ActionSpec, images: Mapping[str, CropResize],
               proprio: list[str], rate_hz: float, topics: BagTopics = BagTopics(), phase: float = 0.25,
               source: str = "demo", task: str = "") -> int:
    """Append the bag as one episode to ``store`` (an open EpisodeStore whose spec matches
    ``images`` and ``proprio``); returns the number of steps."""
    if action.gripper:
        raise BagError("commands in a bag are arm poses: the action cannot include a gripper "
                       "(task.action.gripper=false)")
    if not 0 < phase < 1 or rate_hz <= 0:
        raise BagError(f"phase must be in (0, 1) and rate > 0, got phase={phase} rate={rate_hz}")
    streams = read_streams(path, topics)
    commands, period = streams["command"], 1.0 / rate_hz
    start = max(commands.stamps[0] - phase * period, *(s.stamps[0] for k, s in streams.items() if k != "command"))
    # the last tick comes at most one period after the last command, and at most `phase` of a
    # period after a stream's last message (which then still counts as its newest)
    end = min(commands.stamps[-1] + period,
              *(s.stamps[-1] + phase * period for k, s in streams.items() if k != "command"))
    ticks = start + period * np.arange(int(np.floor((end - start) / period + 1e-6)) + 1)
    if len(ticks) < 2:
        raise BagError(f"{path}: the streams overlap for less than one control period ({period:.3f} s)")

    def observe(t: float) -> tuple[dict[str, np.ndarray], ArmState]:
        pose = messages.pose_from_msg(streams["ee_pose"].at(t))
        q = (messages.joint_state_from_msg(streams["joint_states"].at(t)).position if "joint_states" in streams
             else np.zeros(0))
        arm = ArmState(q, np.zeros_like(q), pose, np.zeros(6), t)
        obs = {name: resize(_image(streams[f"image:{name}"].at(t))) for name, resize in images.items()}
        obs[STATE_KEY] = np.concatenate([PROPRIO[k].read(arm, None) for k in proprio]).astype(np.float32)
        return obs, arm

    try:  # every step converted before anything is written: a bad message leaves the store as it was
        observations, actions = [], []
        obs, arm = observe(ticks[0])
        observations.append(obs)
        for k in range(len(ticks) - 1):
            i = int(np.searchsorted(commands.stamps, ticks[k + 1], side="right")) - 1
            sent = i >= 0 and commands.stamps[i] > ticks[k]
            target = messages.pose_from_msg(commands.values[i]) if sent else arm.ee_pose
            drot = None  # the rotation that takes the measured orientation to the target's, base frame
            if action.rotation:
                drot = (Rotation.from_quat(target[3:], scalar_first=True)
                        * Rotation.from_quat(arm.ee_pose[3:], scalar_first=True).inv()).as_rotvec()
            actions.append(action.normalise(target[:3] - arm.ee_pose[:3], drot))
            obs, arm = observe(ticks[k + 1])
            observations.append(obs)
    except ValueError as e:  # MessageError (an encoding, a non-finite pose), a crop that does not fit
        raise BagError(f"{path}: {e}") from None
    store.begin_episode(observations[0], source=source, task=task, bag=str(path))
    for k, act in enumerate(actions):
        store.append_step(obs=observations[k + 1], action=act, policy_action=act, reward=np.float32(0.0),
                          terminated=False, truncated=k == len(actions) - 1, intervention=True,
                          stamp=float(ticks[k + 1]))
    store.end_episode()
    return len(actions)


def _pose_from_state(state: np.ndarray, proprio: list[str]) -> np.ndarray:
    """The end-effector pose (x, y, z, qw, qx, qy, qz) a ``state`` vector holds (ee_pos with
    ee_rot6d or ee_quat)."""
    offsets, at = {}, 0
    for key in proprio:
        size = PROPRIO[key].size(0) if key not in ("q", "dq") else None
        if size is None:
            raise BagError(f"export needs the state's layout without joint features, got proprio {proprio}")
        offsets[key], at = (at, at + size), at + size
    if "ee_pos" not in offsets or not ({"ee_rot6d", "ee_quat"} & set(offsets)):
        raise BagError(f"export needs ee_pos and ee_rot6d (or ee_quat) in the state, got proprio {proprio}")
    pos = state[slice(*offsets["ee_pos"])]
    if "ee_quat" in offsets:
        quat = state[slice(*offsets["ee_quat"])]
    else:
        columns = state[slice(*offsets["ee_rot6d"])].reshape(2, 3)
        first = columns[0] / np.linalg.norm(columns[0])
        second = columns[1] - first * (first @ columns[1])
        second /= np.linalg.norm(second)
        matrix = np.stack([first, second, np.cross(first, second)], axis=1)
        quat = Rotation.from_matrix(matrix).as_quat(scalar_first=True)
    return np.concatenate([pos, quat]).astype(float)


def export_bag(episode: Mapping[str, Any], path: str | Path, action: ActionSpec, proprio: list[str],
               rate_hz: float, topics: BagTopics = BagTopics(), storage: str = "mcap", start: float = 0.0,
               frame_id: str = "base") -> int:
    """Write one episode (as :meth:`EpisodeStore.load_episode` returns it) as a ROS 2 bag:
    camera images and ``ee_pose`` at each step's time, the command (the target pose its
    action asked for) half a period later, as :func:`import_bag` reads them back. Returns
    the number of messages."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from robot_rl.messages import RosbagsTypes

    if action.gripper:
        raise BagError("a bag's commands are arm poses: export an episode without a gripper action")
    plugins = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
    if storage not in plugins:
        raise ValueError(f"storage must be sqlite3 or mcap, got {storage!r}")
    types, period = RosbagsTypes("jazzy"), 1.0 / rate_hz
    obs, actions = episode["obs"], np.asarray(episode["action"])
    count = 0
    with Writer(Path(path), version=9, storage_plugin=plugins[storage]) as writer:
        def connection(topic: str, msgtype: str) -> Any:
            return writer.add_connection(_topic(topic), msgtype, typestore=types.store)

        cameras = {name: connection(topic, "sensor_msgs/msg/Image") for name, topic in topics.images.items()}
        pose_c = connection(topics.ee_pose, "geometry_msgs/msg/PoseStamped")
        command_c = connection(topics.command, "geometry_msgs/msg/PoseStamped")

        def write(c: Any, stamp: float, msg: Any) -> None:
            nonlocal count
            writer.write(c, round(stamp * 1e9), types.serialize(msg))
            count += 1

        for k in range(len(actions) + 1):
            t = start + k * period
            pose = _pose_from_state(np.asarray(obs[STATE_KEY][k], dtype=float), proprio)
            for name, c in cameras.items():
                write(c, t, messages.image_to_msg(types, np.asarray(obs[name][k]), t, f"{name}_optical"))
            write(pose_c, t, messages.pose_to_msg(types, pose, t, frame_id))
            if k < len(actions):
                dpos, drot, _ = action.split(actions[k])
                target = np.concatenate([pose[:3] + dpos, (Rotation.from_rotvec(drot) * Rotation.from_quat(
                    pose[3:], scalar_first=True)).as_quat(scalar_first=True)])
                write(command_c, t + 0.5 * period, messages.pose_to_msg(types, target, t + 0.5 * period, frame_id))
    return count


def _image(msg: Any) -> np.ndarray:
    if hasattr(msg, "format"):
        return messages.compressed_image_from_msg(msg)
    return messages.image_from_msg(msg)
