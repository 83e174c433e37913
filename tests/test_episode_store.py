import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import gymnasium as gym
import numpy as np
import pytest

from robot_rl.data.episode_store import EpisodeStore
from robot_rl.data.spec import KeySpec, StoreSpec, default_step_keys
from robot_rl.data.store_format import CorruptStoreError, StoreFormatError, StoreLockedError


def small_spec(extra=("progress",)) -> StoreSpec:
    obs = {"front": KeySpec((8, 8, 3), "uint8"), "wrist": KeySpec((8, 8, 3), "uint8"),
           "state": KeySpec((5,), "float32")}
    return StoreSpec(obs, default_step_keys(3, extra))


def random_obs(rng, spec):
    return {k: (rng.integers(0, 256, s.shape, dtype=np.uint8) if s.dtype == "uint8"
                else rng.standard_normal(s.shape).astype(s.dtype)) for k, s in spec.obs.items()}


def random_step(rng):
    return {
        "action": rng.standard_normal(3).astype(np.float32),
        "policy_action": rng.standard_normal(3).astype(np.float32),
        "reward": np.float32(rng.standard_normal()),
        "terminated": bool(rng.random() < 0.2),
        "truncated": bool(rng.random() < 0.2),
        "intervention": bool(rng.random() < 0.5),
        "label": int(rng.integers(-1, 2)),
        "stamp": float(rng.random() * 1e9),
        "progress": np.float32(rng.random()) if rng.random() < 0.5 else np.float32(np.nan),
    }


def write_random_episode(store, rng, length, **attrs):
    """Write one episode and return what was written, in load_episode's layout."""
    first = random_obs(rng, store.spec)
    store.begin_episode(first, **attrs)
    obs = {k: [v] for k, v in first.items()}
    steps = {k: [] for k in store.spec.steps}
    for _ in range(length):
        nxt, step = random_obs(rng, store.spec), random_step(rng)
        store.append_step(obs=nxt, **step)
        for k, v in nxt.items():
            obs[k].append(v)
        for k in steps:
            steps[k].append(np.asarray(step[k], dtype=store.spec.steps[k].dtype))
    expected = {"obs": {k: np.stack(v) for k, v in obs.items()}}
    expected.update({k: np.stack(v) if v else np.zeros((0, *store.spec.steps[k].shape), store.spec.steps[k].dtype)
                     for k, v in steps.items()})
    return expected


def assert_bit_equal(a, b):
    assert set(a) == set(b)
    for key in a:
        if isinstance(a[key], dict):
            assert_bit_equal(a[key], b[key])
        else:
            assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
            assert a[key].tobytes() == b[key].tobytes(), key


def test_round_trip_is_bit_exact(tmp_path):
    rng = np.random.default_rng(0)
    store = EpisodeStore.create(tmp_path / "t.zarr", small_spec())
    written = []
    for i, (n, src) in enumerate([(5, "demo"), (0, "online"), (12, "online"), (1, "eval")]):
        written.append(write_random_episode(store, rng, n, source=src, task="pick", config_hash="abc", seed=i))
        store.end_episode(success=i % 2 == 0, labels=["good"] if i == 2 else [], note={"i": i})
    store.close()

    reader = EpisodeStore.open(tmp_path / "t.zarr")
    infos = reader.episodes()
    assert [e.length for e in infos] == [5, 0, 12, 1]
    assert [e.source for e in infos] == ["demo", "online", "online", "eval"]
    assert infos[2].labels == ("good",) and infos[2].attrs["note"] == {"i": 2} and infos[2].attrs["seed"] == 2
    assert all(e.complete and e.task == "pick" and e.config_hash == "abc" for e in infos)
    for info, expected in zip(infos, written, strict=True):
        assert_bit_equal(reader.load_episode(info.index), expected)
    assert reader.check() == []
    assert [e.index for e in reader.episodes(source="online")] == [1, 2]
    assert [e.index for e in reader.episodes(label="good")] == [2]
    assert [e.index for e in reader.episodes(success=True, source=["demo", "eval"])] == [0]


def test_optional_step_keys_get_defaults(tmp_path):
    rng = np.random.default_rng(1)
    with EpisodeStore.create(tmp_path / "s.zarr", small_spec()) as store:
        store.begin_episode(random_obs(rng, store.spec))
        action = np.array([1, 2, 3], np.float32)
        store.append_step(obs=random_obs(rng, store.spec), action=action, reward=1, terminated=False, truncated=True)
        store.end_episode()
    ep = EpisodeStore.open(tmp_path / "s.zarr").load_episode(0)
    np.testing.assert_array_equal(ep["policy_action"][0], action)  # no intervention: policy's action ran
    assert not ep["intervention"][0] and ep["label"][0] == 0 and np.isnan(ep["progress"][0])
    assert ep["truncated"][0] and not ep["terminated"][0] and abs(ep["stamp"][0] - time.time()) < 60


def test_spec_from_gymnasium_spaces():
    space = gym.spaces.Dict({
        "front": gym.spaces.Box(0, 255, (128, 128, 3), np.uint8),
        "state": gym.spaces.Box(-np.inf, np.inf, (9,), np.float32),
    })
    spec = StoreSpec.from_spaces(space, action_dim=4, extra_step_keys=["clip_progress"])
    assert spec.image_keys == ["front"] and spec.lowdim_obs_keys == ["state"]
    assert spec.steps["action"] == KeySpec((4,), "float32") and spec.steps["clip_progress"] == KeySpec((), "float32")
    assert StoreSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s, o: s.update(action=np.zeros(4, np.float32)), "action: shape"),
        (lambda s, o: s.update(action=np.zeros(3, np.float64)), "action: dtype"),
        (lambda s, o: s.update(bogus=1.0), "bogus"),
        (lambda s, o: s.pop("reward"), "reward"),
        (lambda s, o: s.update(label=7.5), "label"),
        (lambda s, o: o.update(front=np.zeros((8, 8, 3), np.float32)), "front"),
        (lambda s, o: o.update(wrist=np.zeros((8, 9, 3), np.uint8)), "wrist"),
        (lambda s, o: o.pop("state"), "state"),
        (lambda s, o: o.update(extra=np.zeros(2)), "extra"),
    ],
)
def test_bad_step_is_refused_and_nothing_is_written(tmp_path, change, message):
    rng = np.random.default_rng(2)
    store = EpisodeStore.create(tmp_path / "s.zarr", small_spec())
    store.begin_episode(random_obs(rng, store.spec))
    store.append_step(obs=random_obs(rng, store.spec), **random_step(rng))
    journal_size = (tmp_path / "s.zarr" / "live_episode.journal").stat().st_size
    step, obs = random_step(rng), random_obs(rng, store.spec)
    change(step, obs)
    with pytest.raises(ValueError, match=message):
        store.append_step(obs=obs, **step)
    assert (tmp_path / "s.zarr" / "live_episode.journal").stat().st_size == journal_size
    assert store.end_episode().length == 1
    store.close()
    assert EpisodeStore.open(tmp_path / "s.zarr").episodes()[0].length == 1


def test_bad_episode_attributes(tmp_path):
    store = EpisodeStore.create(tmp_path / "s.zarr", small_spec())
    obs = random_obs(np.random.default_rng(0), store.spec)
    with pytest.raises(ValueError, match="source"):
        store.begin_episode(obs, source="teleop")
    with pytest.raises(ValueError, match="JSON"):
        store.begin_episode(obs, thing=object())
    with pytest.raises(RuntimeError, match="begin_episode"):
        store.append_step(obs=obs, **random_step(np.random.default_rng(0)))


def test_path_that_is_not_a_store(tmp_path):
    with pytest.raises(StoreFormatError, match="not an EpisodeStore"):
        EpisodeStore.open(tmp_path)
    (tmp_path / "file.txt").write_text("hello")
    with pytest.raises(StoreFormatError, match="not an EpisodeStore"):
        EpisodeStore.open(tmp_path / "file.txt")
    import zarr

    zarr.open_group(tmp_path / "plain.zarr", mode="w")
    with pytest.raises(StoreFormatError, match="not an EpisodeStore"):
        EpisodeStore.open(tmp_path / "plain.zarr")
    with pytest.raises(FileExistsError):
        EpisodeStore.create(tmp_path, small_spec())


def test_append_or_create_appends_to_the_same_layout_and_refuses_another(tmp_path):
    path, rng = tmp_path / "s.zarr", np.random.default_rng(0)
    with EpisodeStore.append_or_create(path, small_spec()) as store:
        write_random_episode(store, rng, 3)
        store.end_episode()
    with EpisodeStore.append_or_create(path, small_spec()) as store:
        write_random_episode(store, rng, 2)
        store.end_episode()
        assert store.num_steps == 5
    with pytest.raises(StoreFormatError, match="another observation/action layout"):
        EpisodeStore.append_or_create(path, small_spec(extra=()))
    with EpisodeStore.append_or_create(path, small_spec()) as store:  # the refusal let go of the writer lock
        assert store.num_steps == 5


def test_unknown_format_version_is_a_clear_error(tmp_path):
    EpisodeStore.create(tmp_path / "s.zarr", small_spec()).close()
    meta_path = tmp_path / "s.zarr" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"]["robot_rl_episode_store"]["format_version"] = 99
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(StoreFormatError, match="version 99"):
        EpisodeStore.open(tmp_path / "s.zarr")


def _store_with_episodes(path, n_episodes=3, length=4, seed=0):
    rng = np.random.default_rng(seed)
    with EpisodeStore.create(path, small_spec()) as store:
        for _ in range(n_episodes):
            write_random_episode(store, rng, length)
            store.end_episode()


def test_corrupt_chunk_names_episode_and_key(tmp_path):
    path = tmp_path / "s.zarr"
    _store_with_episodes(path)  # episodes of 5 obs: episode 1 holds obs rows 5..9
    chunk = path / "obs" / "wrist" / "c" / "7" / "0" / "0" / "0"
    blob = bytearray(chunk.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    chunk.write_bytes(bytes(blob))
    store = EpisodeStore.open(path)
    store.load_episode(0)
    with pytest.raises(CorruptStoreError, match="episode 1, key obs/wrist"):
        store.load_episode(1)
    problems = store.check()
    assert len(problems) == 1 and "episode 1, key obs/wrist" in problems[0]


def test_missing_chunk_is_reported_not_read_as_zeros(tmp_path):
    path = tmp_path / "s.zarr"
    _store_with_episodes(path)
    (path / "obs" / "front" / "c" / "12" / "0" / "0" / "0").unlink()
    store = EpisodeStore.open(path)
    with pytest.raises(CorruptStoreError, match="episode 2, key obs/front: chunk file"):
        store.load_episode(2)
    assert any("episode 2" in p for p in store.check())


def test_truncated_lowdim_chunk(tmp_path):
    path = tmp_path / "s.zarr"
    _store_with_episodes(path)
    chunk = path / "steps" / "reward" / "c" / "0"
    chunk.write_bytes(chunk.read_bytes()[:10])
    problems = EpisodeStore.open(path).check()
    assert len(problems) == 3 and all("key steps/reward" in p for p in problems)


def test_one_writer_at_a_time(tmp_path):
    store = EpisodeStore.create(tmp_path / "s.zarr", small_spec())
    with pytest.raises(StoreLockedError):
        EpisodeStore.open(tmp_path / "s.zarr", mode="a", lock_timeout_s=0.05)
    store.close()
    EpisodeStore.open(tmp_path / "s.zarr", mode="a").close()


def test_reader_sees_committed_episodes_while_writer_appends(tmp_path):
    rng = np.random.default_rng(3)
    writer = EpisodeStore.create(tmp_path / "s.zarr", small_spec())
    reader = EpisodeStore.open(tmp_path / "s.zarr")
    written = []
    for i in range(3):
        written.append(write_random_episode(writer, rng, 3 + i))
        reader.refresh()
        assert len(reader) == i  # the running episode is not shown while its writer lives
        writer.end_episode(success=True)
        reader.refresh()
        assert len(reader) == i + 1
        assert_bit_equal(reader.load_episode(i), written[i])
    second = EpisodeStore.open(tmp_path / "s.zarr")  # a fresh open sees them too
    assert [e.length for e in second.episodes()] == [3, 4, 5]
    writer.close()


# Shared by the writer subprocess and the checks here; the subprocess must not import pytest,
# gymnasium or this module, or its start-up would dominate the kill test's time.
KILL_HELPERS = textwrap.dedent("""
    import numpy as np
    from robot_rl.data.spec import KeySpec, StoreSpec, default_step_keys

    def kill_test_spec():
        obs = {"front": KeySpec((16, 16, 3), "uint8"), "wrist": KeySpec((16, 16, 3), "uint8"),
               "state": KeySpec((3,), "float32")}
        return StoreSpec(obs, default_step_keys(2))

    def kill_test_obs(pos):
        base = (np.arange(16 * 16 * 3).reshape(16, 16, 3) + 7 * pos) % 256
        return {"front": base.astype(np.uint8), "wrist": (255 - base).astype(np.uint8),
                "state": np.array([pos, 0.5 * pos, -pos], np.float32)}

    def kill_test_step(pos):
        return {"action": np.array([pos, pos + 0.25], np.float32), "policy_action": np.array([-pos, 1], np.float32),
                "reward": np.float32(pos % 1000), "terminated": pos % 3 == 0, "truncated": pos % 5 == 0,
                "intervention": pos % 2 == 0, "label": pos % 3 - 1, "stamp": float(pos)}
""")

KILL_WRITER = KILL_HELPERS + textwrap.dedent("""
    import sys
    from robot_rl.data.episode_store import EpisodeStore
    store = EpisodeStore.open(sys.argv[1], mode="a")
    rng = np.random.default_rng(int(sys.argv[2]))
    obs_pos = sum(e.length + 1 for e in store.episodes())
    step_pos = sum(e.length for e in store.episodes())
    print("open", step_pos, flush=True)
    while True:
        store.begin_episode(kill_test_obs(obs_pos), task="kill")
        obs_pos += 1
        for _ in range(int(rng.integers(1, 12))):
            store.append_step(obs=kill_test_obs(obs_pos), **kill_test_step(step_pos))
            obs_pos += 1
            step_pos += 1
            print(step_pos, flush=True)
        store.end_episode(success=bool(step_pos % 2))
""")

_KILL = {}
exec(KILL_HELPERS, _KILL)
kill_test_spec, kill_test_obs, kill_test_step = _KILL["kill_test_spec"], _KILL["kill_test_obs"], _KILL["kill_test_step"]


DEATH_SCRIPT = KILL_HELPERS + textwrap.dedent("""
    import os, sys
    from robot_rl.data.episode_store import EpisodeStore
    store = EpisodeStore.create(sys.argv[1], kill_test_spec())
    store.begin_episode(kill_test_obs(0), task="dies")
    for i in range(int(sys.argv[2])):
        store.append_step(obs=kill_test_obs(i + 1), **kill_test_step(i))
    os._exit(0)  # dies without end_episode or close
""")


@pytest.mark.parametrize("steps", [3, 0])
def test_unfinished_episode_rule(tmp_path, steps):
    """A dead writer's episode comes back with complete=False and all its steps; one with no step is dropped."""
    path = tmp_path / "s.zarr"
    script = tmp_path / "die.py"
    script.write_text(DEATH_SCRIPT)
    subprocess.run([sys.executable, str(script), str(path), str(steps)], check=True, timeout=60)
    reader = EpisodeStore.open(path)
    assert [(e.length, e.complete, e.task) for e in reader.episodes()] == ([(3, False, "dies")] if steps else [])
    if steps:
        assert assert_kill_test_store_intact(reader) == 3 and reader.check() == []
    with EpisodeStore.open(path, mode="a") as writer:  # recovery makes it a committed episode
        assert [(e.length, e.complete) for e in writer.episodes()] == ([(3, False)] if steps else [])
        assert not (path / "live_episode.journal").exists()
        if steps:
            assert writer.episodes()[0].attrs["end_reason"] == "writer died"
    assert EpisodeStore.open(path).check() == []


def assert_kill_test_store_intact(store: EpisodeStore, from_episode: int = 0) -> int:
    """Check every episode's bookkeeping and low-dim data (rewritten in place at each episode end),
    and the frames of the episodes from ``from_episode`` on (frames are never rewritten)."""
    import zarr

    infos = store.episodes()
    obs_pos = step_pos = 0
    for info in infos:
        assert (info.obs_start, info.step_start) == (obs_pos, step_pos)
        obs_pos, step_pos = info.obs_stop, info.step_stop
    committed = [e for e in infos if e.complete or e.index < len(infos) - 1]  # the orphan lives in the journal
    root = zarr.open_group(store.path, mode="r")
    if committed:
        n_obs, n_steps = committed[-1].obs_stop, committed[-1].step_stop
        positions = np.arange(n_obs)
        expected_state = np.stack([positions, 0.5 * positions, -positions], 1).astype(np.float32)
        assert root["obs/state"][:n_obs].tobytes() == expected_state.tobytes()
        steps = [kill_test_step(p) for p in range(n_steps)]
        for key, spec in store.spec.steps.items():
            expected = np.array([s[key] for s in steps], dtype=spec.dtype).reshape(n_steps, *spec.shape)
            assert root[f"steps/{key}"][:n_steps].tobytes() == expected.tobytes(), key
    for info in infos[from_episode:]:
        ep = store.load_episode(info.index)
        for j in range(info.length + 1):
            for key, value in kill_test_obs(info.obs_start + j).items():
                assert np.array_equal(ep["obs"][key][j], value), (info.index, key, j)
        for k in range(info.length):
            for key, value in kill_test_step(info.step_start + k).items():
                assert np.array_equal(ep[key][k], np.asarray(value, dtype=ep[key].dtype)), (info.index, key, k)
    return step_pos


@pytest.mark.slow
def test_kill_minus_nine_loses_no_committed_step(tmp_path):
    path = tmp_path / "s.zarr"
    EpisodeStore.create(path, kill_test_spec()).close()
    script = tmp_path / "writer.py"
    script.write_text(KILL_WRITER)
    rng = np.random.default_rng(1234)
    committed = 0
    unfinished_seen = kills_mid_run = checked = 0
    promised = 0  # steps the writers said they had committed before their kill: a floor, whatever the CPU speed
    for run in range(52):
        proc = subprocess.Popen([sys.executable, str(script), str(path), str(run)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if run % 5 == 4:  # now and then kill at any moment, even during start-up or recovery
            time.sleep(rng.uniform(0.0, 0.4))
        else:  # let it commit a few steps, then kill it a random moment later
            opened = proc.stdout.readline().split()
            assert opened[0] == "open", opened
            target = int(opened[1]) + int(rng.integers(2, 12))
            while int(proc.stdout.readline()) < target:
                pass
            promised = committed = target
            kills_mid_run += 1
            time.sleep(rng.uniform(0.0, 0.01))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err
        counts = [int(line) for line in out.split() if line.isdigit()]
        if counts:
            committed = counts[-1]
        if run % 5 == 4:
            kills_mid_run += bool(counts)
        reader = EpisodeStore.open(path)
        unfinished_seen += any(not e.complete for e in reader.episodes())
        assert reader.num_steps >= committed, f"run {run}: {reader.num_steps} steps, {committed} were committed"
        committed = assert_kill_test_store_intact(reader, from_episode=checked)
        checked = max(0, len(reader) - 1)
    assert kills_mid_run >= 30 and committed >= promised > 200
    assert unfinished_seen >= 10  # kills did land mid-episode, and those episodes were kept
    with EpisodeStore.open(path, mode="a") as final:
        assert final.check() == []
    assert assert_kill_test_store_intact(EpisodeStore.open(path)) == committed
    assert not list(path.rglob("*.partial"))


def test_close_commits_running_episode_as_unfinished(tmp_path):
    rng = np.random.default_rng(5)
    store = EpisodeStore.create(tmp_path / "s.zarr", small_spec())
    expected = write_random_episode(store, rng, 4)
    store.close()
    reader = EpisodeStore.open(tmp_path / "s.zarr")
    assert [(e.length, e.complete) for e in reader.episodes()] == [(4, False)]
    assert_bit_equal(reader.load_episode(0), expected)


def test_append_mode_continues_a_store(tmp_path):
    rng = np.random.default_rng(6)
    path = tmp_path / "s.zarr"
    with EpisodeStore.create(path, small_spec()) as store:
        first = write_random_episode(store, rng, 3)
        store.end_episode()
    with EpisodeStore.open(path, mode="a") as store:
        second = write_random_episode(store, rng, 2)
        store.end_episode()
    reader = EpisodeStore.open(path)
    assert_bit_equal(reader.load_episode(0), first)
    assert_bit_equal(reader.load_episode(1), second)
    assert os.path.exists(path / "writer.lock")
