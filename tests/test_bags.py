"""ROS 2 bags into an EpisodeStore: a bag written with rosbags from a sim rollout (cameras at
30 Hz, state at 100 Hz, commands at 10 Hz, all with jitter) imports to the rollout's steps;
bags that are truncated, empty or carry the wrong types are clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from robot_rl import messages
from robot_rl.data import EpisodeStore, StoreSpec
from robot_rl.data.bags import BagError, BagTopics, import_bag
from robot_rl.messages import RosbagsTypes

CAMS = ["cameras=sim64", "cameras.front.resolution=[32,32]", "cameras.front.size=[32,32]",
        "cameras.wrist.resolution=[32,32]", "cameras.wrist.size=[32,32]"]
STEPS = 12


def rollout(env, seed=0):
    """(observations (STEPS + 1), ee poses, joint positions, actions) of a random-action episode."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    observations, poses, joints, actions = [obs], [], [], []
    for _ in range(STEPS + 1):
        state = env.backend.arm.state()
        poses.append(state.ee_pose.copy())
        joints.append(state.q.copy())
        if len(actions) == STEPS:
            break
        action = rng.uniform(-0.8, 0.8, env.action_space.shape).astype(np.float32)
        obs, *_ = env.step(action)
        observations.append(obs)
        actions.append(action)
    return observations, poses, joints, actions


def write_bag(path, env, observations, poses, joints, actions, storage="sqlite3", seed=0, image_type="Image"):
    from rosbags.rosbag2 import StoragePlugin, Writer

    types, rng = RosbagsTypes("jazzy"), np.random.default_rng(seed)
    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    jitter = lambda ms: rng.uniform(-ms, ms) / 1000  # noqa: E731
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        def connection(topic, msgtype):
            return writer.add_connection(topic, msgtype, typestore=types.store)

        image_msgtype = "std_msgs/msg/String" if image_type == "String" else "sensor_msgs/msg/Image"
        cams = {name: connection(f"/{name}/image_raw", image_msgtype) for name in ("front", "wrist")}
        pose_c, joints_c = connection("/ee_pose", "geometry_msgs/msg/PoseStamped"), connection(
            "/joint_states", "sensor_msgs/msg/JointState")
        command_c = connection("/target_pose", "geometry_msgs/msg/PoseStamped")
        written = []
        for k, obs in enumerate(observations):
            t = 100.0 + 0.1 * k  # the arm reached step k's state at t
            for offset in (0.010, 0.043, 0.076):  # cameras at 30 Hz
                for name, c in cams.items():
                    stamp = t + offset + jitter(3)
                    msg = (types.cls("std_msgs/msg/String")(data="x") if image_type == "String"
                           else messages.image_to_msg(types, obs[name], stamp, f"{name}_optical"))
                    written.append((stamp, c, msg))
            for j in range(10):  # state at 100 Hz
                stamp = t + 0.005 + 0.01 * j + jitter(2)
                written.append((stamp, pose_c, messages.pose_to_msg(types, poses[k], stamp, "base")))
                written.append((stamp, joints_c, messages.joint_state_to_msg(
                    types, [f"joint{i}" for i in range(1, 8)], joints[k], np.zeros(7), None, stamp)))
            if k < len(actions):  # the actor's command, at 10 Hz, after it saw step k
                stamp = t + 0.050 + jitter(5)
                target = np.concatenate([poses[k][:3] + actions[k][:3] * env.action_spec.pos_step, poses[k][3:]])
                written.append((stamp, command_c, messages.pose_to_msg(types, target, stamp, "base")))
        for stamp, c, msg in sorted(written, key=lambda m: m[0]):
            # the recorder's clock: a little after capture, not in order across topics
            writer.write(c, int((stamp + 0.002 + rng.uniform(0, 0.004)) * 1e9), types.serialize(msg))
    return path


@pytest.fixture
def recorded(make_sim_env):
    env = make_sim_env("task=reach", *CAMS, "task.action.gripper=false", "robot.proprio=[ee_pos,ee_rot6d]")
    return env, rollout(env)


def new_store(path, env):
    return EpisodeStore.create(path, StoreSpec.from_spaces(env.observation_space, env.action_space.shape[0]))


def imported(env, bag, store_path):
    with new_store(store_path, env) as store:
        steps = import_bag(bag, store, env.action_spec, env.images, list(env.proprio), rate_hz=10.0)
        return steps, store.load_episode(0)


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_a_bag_of_a_sim_rollout_imports_to_its_steps(recorded, tmp_path, storage):
    env, (observations, poses, joints, actions) = recorded
    bag = write_bag(tmp_path / "bag", env, observations, poses, joints, actions, storage)
    steps, episode = imported(env, bag, tmp_path / "s.zarr")
    assert steps == STEPS
    np.testing.assert_allclose(episode["action"], np.stack(actions), atol=1e-5)
    for name in ("front", "wrist", "state"):
        np.testing.assert_allclose(episode["obs"][name], np.stack([o[name] for o in observations]), atol=1e-5)
    assert episode["truncated"][-1] and not episode["terminated"].any()


def test_broken_bags_are_one_clear_error(recorded, tmp_path):
    env, (observations, poses, joints, actions) = recorded
    bag = write_bag(tmp_path / "bag", env, observations, poses, joints, actions)
    with pytest.raises(BagError, match="no topic /front/cam"):
        with new_store(tmp_path / "a.zarr", env) as store:
            import_bag(bag, store, env.action_spec, env.images, list(env.proprio), 10.0,
                       BagTopics(images={"front": "front/cam", "wrist": "wrist/image_raw"}))
    typed = write_bag(tmp_path / "typed", env, observations, poses, joints, actions, image_type="String")
    with pytest.raises(BagError, match="carries std_msgs/msg/String, expected sensor_msgs/msg/Image"):
        imported(env, typed, tmp_path / "b.zarr")
    empty = write_bag(tmp_path / "empty", env, observations[:0], [], [], [])
    with pytest.raises(BagError, match="no messages on"):
        imported(env, empty, tmp_path / "c.zarr")
    with new_store(tmp_path / "f.zarr", env) as store:  # a crop that does not fit: refused, nothing written
        from robot_rl.env.image import CropResize

        with pytest.raises(BagError, match="does not fit"):
            import_bag(bag, store, env.action_spec, {"front": CropResize((32, 32), (0, 0, 64, 64)),
                                                     "wrist": env.images["wrist"]}, list(env.proprio), 10.0)
        assert len(store.episodes()) == 0
    database = next((tmp_path / "bag").glob("*.db3"))
    database.write_bytes(database.read_bytes()[: database.stat().st_size // 3])  # truncated
    with pytest.raises(BagError, match="cannot read the bag"):
        imported(env, bag, tmp_path / "d.zarr")
    with pytest.raises(BagError, match="cannot include a gripper"):
        with new_store(tmp_path / "e.zarr", env) as store:
            from robot_rl.env.robot_env import ActionSpec

            import_bag(bag, store, ActionSpec(0.02), env.images, list(env.proprio), 10.0)


def test_import_bag_from_the_command_line(recorded, tmp_path, capsys):
    from robot_rl.cli import main

    env, (observations, poses, joints, actions) = recorded
    bag = write_bag(tmp_path / "bag", env, observations, poses, joints, actions, "mcap")
    config = ["task=reach", *CAMS, "task.action.gripper=false", "robot.proprio=[ee_pos,ee_rot6d]"]
    assert main(["data", "import-bag", str(bag), f"out={tmp_path / 's.zarr'}", "rate=10", *config]) == 0
    assert f"{STEPS} steps" in capsys.readouterr().out
    with EpisodeStore.open(tmp_path / "s.zarr") as store:
        (info,) = store.episodes()
        assert info.length == STEPS and info.source == "demo" and info.attrs["bag"] == str(bag)
    assert main(["data", "import-bag", str(tmp_path / "nothing"), f"out={tmp_path / 't.zarr'}", *config]) == 2
    assert "cannot read the bag" in capsys.readouterr().err
    assert main(["data", "export-bag", str(tmp_path / "s.zarr"), "episode=0", f"out={tmp_path / 'again'}",
                 *config]) == 0
    assert main(["data", "import-bag", str(tmp_path / "again"), f"out={tmp_path / 's.zarr'}", "joint_states=",
                 *config]) == 0
    with EpisodeStore.open(tmp_path / "s.zarr") as store:
        first, second = store.load_episode(0), store.load_episode(1)
    np.testing.assert_allclose(second["action"], first["action"], atol=1e-5)
    assert main(["data", "export-bag", str(tmp_path / "s.zarr"), "episode=9", f"out={tmp_path / 'x'}", *config]) == 2


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_an_episode_exported_to_a_bag_imports_back_the_same(recorded, tmp_path, storage):
    from robot_rl.data.bags import export_bag

    env, (observations, _, _, actions) = recorded
    episode = {"obs": {k: np.stack([o[k] for o in observations]) for k in observations[0]},
               "action": np.stack(actions)}
    topics = BagTopics(joint_states=None)
    assert export_bag(episode, tmp_path / "out", env.action_spec, list(env.proprio), 10.0, topics, storage) > 0
    with new_store(tmp_path / "s.zarr", env) as store:
        steps = import_bag(tmp_path / "out", store, env.action_spec, env.images, list(env.proprio), 10.0, topics)
        back = store.load_episode(0)
    assert steps == STEPS
    np.testing.assert_allclose(back["action"], episode["action"], atol=1e-5)
    for key, values in episode["obs"].items():
        np.testing.assert_allclose(back["obs"][key], values, atol=1e-5)
