"""Faults a long robot run meets: two robots streaming to one learner, a record that does not
fit the run, a learner killed under `robot-rl train` (restarted by its supervisor), a rerun
that finishes the budget instead of starting a new one."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest

from robot_rl.data import EpisodeStore
from robot_rl.rl.records import RecordError, begin_record, check_record, step_record
from tests.test_train import TINY, _free_port, _start_learner, _wait_for

pytestmark = pytest.mark.slow
EPISODE = ["task.max_steps=25", "task.terminate_on_success=false"]  # every episode 25 steps: lengths tell them apart


def _actor(run_dir, port, token, steps, *more):
    args = [sys.executable, "-m", "robot_rl.cli", "actor", *TINY, *EPISODE, f"train.env_steps={steps}",
            "train.eval_every=1000", f"learner.address=127.0.0.1:{port}", f"run_dir={run_dir}", *more]
    return subprocess.Popen(args, env={**os.environ, "ROBOT_RL_TOKEN": token}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _episodes(path):
    with EpisodeStore.open(path) as store:
        return [(info, store.load_episode(info.index)) for info in store.episodes()]


def test_two_actors_into_one_learner_never_merge_and_lose_no_step(tmp_path):
    port, token = _free_port(), "two-actors"
    log = open(tmp_path / "learner.log", "ab")
    learner = _start_learner(tmp_path / "learner", port, token, log)
    try:
        _wait_for((tmp_path / "learner" / "learner.json").exists, 120, "the learner")
        actors = [_actor(tmp_path / f"robot{k}", port, token, 100) for k in range(2)]
        outputs = [a.communicate(timeout=300)[0] for a in actors]
        assert [a.returncode for a in actors] == [0, 0], outputs
    finally:
        learner.send_signal(signal.SIGTERM)
        learner.wait(60)
        log.close()
    ids = [next(line.split()[2] for line in out.splitlines() if line.startswith("actor id:")) for out in outputs]
    assert ids[0] != ids[1]  # <host>-<pid> by default: unique without configuration
    sent = {}
    for k, actor_id in enumerate(ids):
        for _, data in _episodes(tmp_path / f"robot{k}" / f"{actor_id}.zarr"):
            sent[(actor_id, float(data["stamp"][0]))] = data
    stored = _episodes(tmp_path / "learner" / "learner" / "replay.zarr")
    assert sum(info.length for info, _ in stored) == 200 == sum(len(d["action"]) for d in sent.values())
    for info, data in stored:  # each stored episode is exactly one actor's episode, step for step
        origin = sent[(info.attrs["actor"], float(data["stamp"][0]))]
        np.testing.assert_array_equal(data["action"], origin["action"])
        np.testing.assert_array_equal(data["stamp"], origin["stamp"])


def test_a_record_that_does_not_fit_the_run_is_refused_once_and_not_retried(tmp_path):
    from robot_rl.data import StoreSpec
    from robot_rl.env.factory import spaces_from_config
    from robot_rl.schema import load_config
    from robot_rl.transport.client import LearnerClient, StepStreamer

    cfg = load_config(TINY, name="train")
    obs_space, action_dim = spaces_from_config(cfg)
    obs = {k: np.zeros(s.shape, s.dtype) for k, s in obs_space.spaces.items()}
    fields = {"action": np.zeros(action_dim, np.float32), "policy_action": np.zeros(action_dim, np.float32),
              "reward": np.float32(0), "terminated": np.bool_(False), "truncated": np.bool_(False),
              "intervention": np.bool_(False), "label": np.int8(0), "stamp": np.float64(0)}
    spec = StoreSpec.from_spaces(obs_space, action_dim)
    check_record(step_record(0, obs, fields), spec)
    wrong = {**obs, "front": np.zeros((16, 16, 3), np.uint8)}
    with pytest.raises(RecordError, match=r"'obs/front' is uint8\[16, 16, 3\], the run's spec says uint8\[32, 32, 3\]"):
        check_record(step_record(0, wrong, fields), spec)

    port, token = _free_port(), "wrong-shape"
    log = open(tmp_path / "learner.log", "ab")
    learner = _start_learner(tmp_path, port, token, log)
    try:
        _wait_for((tmp_path / "learner.json").exists, 120, "the learner")
        client = LearnerClient(f"127.0.0.1:{port}", token, "bad-robot")
        attempts = Counter()
        send = client.send_encoded_steps

        def counted(steps, sequence):
            attempts[sequence] += 1
            return send(steps, sequence)

        client.send_encoded_steps = counted
        streamer = StepStreamer(client, retry_initial_s=0.01)
        streamer.put(begin_record(0, wrong), begins_episode=True)
        deadline = time.monotonic() + 10
        while streamer.dropped == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        streamer.close()
        client.close()
        assert streamer.dropped == 1 and list(attempts.values()) == [1]  # refused once, never retried
    finally:
        learner.send_signal(signal.SIGTERM)
        learner.wait(60)
        log.close()
    text = (tmp_path / "learner.log").read_text()
    assert "refused malformed message" in text and "obs/front" in text
    with EpisodeStore.open(tmp_path / "learner" / "replay.zarr") as replay:
        assert replay.num_steps == 0


def test_train_restarts_a_killed_learner_and_a_rerun_finishes_the_budget(tmp_path):
    args = [sys.executable, "-m", "robot_rl.cli", "train", *TINY, *EPISODE, "train.env_steps=300",
            "train.eval_every=300", f"run_dir={tmp_path}"]
    train = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    info = tmp_path / "learner.json"
    _wait_for(info.exists, 120, "the learner")
    first = json.loads(info.read_text())["pid"]
    _wait_for(lambda: (tmp_path / "learner" / "checkpoint.pt").exists(), 180, "a checkpoint")
    os.kill(first, signal.SIGKILL)
    _wait_for(lambda: json.loads(info.read_text())["pid"] != first, 120, "the restarted learner")
    out, _ = train.communicate(timeout=600)
    assert train.returncode == 0, out
    assert "env_steps=300" in out, out
    log = (tmp_path / "learner.log").read_text()
    assert "resumed from" in log
    with EpisodeStore.open(tmp_path / "actor-0.zarr") as actor_store:
        assert actor_store.num_steps == 300
        actor_episodes = {round(float(actor_store.load_episode(i.index)["stamp"][0]), 6): i.length
                          for i in actor_store.episodes() if i.complete}
    with EpisodeStore.open(tmp_path / "learner" / "replay.zarr") as replay:
        learner_episodes = {round(float(replay.load_episode(i.index)["stamp"][0]), 6): i.length
                            for i in replay.episodes()}
    assert actor_episodes == learner_episodes  # every finished episode reached the learner whole

    rerun = subprocess.run([*args[:-2], "train.env_steps=350", f"run_dir={tmp_path}"], capture_output=True,
                           text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    with EpisodeStore.open(tmp_path / "actor-0.zarr") as actor_store:
        assert actor_store.num_steps == 350  # the total for the run folder, not 350 more
    assert "resuming at 300 of 350 env steps" in rerun.stdout + rerun.stderr


class _RewardModel:
    """A reward model double: scoring waits for ``release``, then fails (episodes keep their rewards)."""

    name = "double"

    def __init__(self):
        import threading

        self.release = threading.Event()

    def score(self, frames, task):
        self.release.wait(10)
        raise RuntimeError("reward_model down")


def _episode(n=3):
    return {"obs": {"front": np.zeros((n + 1, 4, 4, 3), np.uint8)}, "reward": np.zeros(n, np.float32),
            "terminated": np.zeros(n, bool), "truncated": np.zeros(n, bool)}


@pytest.mark.parametrize("failures", [1, 99])
def test_the_relabeler_retries_a_failed_delivery_then_keeps_the_episode(failures):
    from robot_rl.rewards.composer import RewardConfig
    from robot_rl.rewards.relabel import Relabeler

    delivered, attempts = [], []

    def deliver(episode, demo):
        attempts.append(1)
        if len(attempts) <= failures and len(attempts) <= Relabeler.RETRIES:
            raise OSError("buffer busy")
        delivered.append(episode)

    reward_model = _RewardModel()
    reward_model.release.set()
    relabeler = Relabeler(reward_model, "t", ["front"], RewardConfig(), deliver=deliver, retry_s=0.001)
    relabeler.submit(_episode())
    assert relabeler.wait(10)
    relabeler.close()
    assert len(delivered) == 1 and relabeler.undelivered == 0  # nothing dropped
    assert relabeler.kept_own == (1 if failures >= Relabeler.RETRIES else 0)


def test_the_relabeler_never_makes_a_caller_wait():
    from robot_rl.rewards.composer import RewardConfig
    from robot_rl.rewards.relabel import Relabeler

    delivered = []
    reward_model = _RewardModel()  # blocked: the queue fills
    relabeler = Relabeler(reward_model, "t", ["front"], RewardConfig(), deliver=lambda e, d: delivered.append(e),
                          max_pending=1)
    started = time.monotonic()
    for _ in range(5):
        relabeler.submit(_episode())
    assert time.monotonic() - started < 1.0  # no submit waited on the reward_model
    assert relabeler.unjudged >= 3 and len(delivered) == relabeler.unjudged  # delivered at once, own rewards
    reward_model.release.set()
    assert relabeler.wait(10)
    relabeler.close()
    assert len(delivered) == 5


def test_train_gives_up_on_a_learner_past_its_restarts_in_one_line(tmp_path):
    args = [sys.executable, "-m", "robot_rl.cli", "train", *TINY, *EPISODE, "train.env_steps=100000",
            "train.eval_every=100000", "train.restarts=0", f"run_dir={tmp_path}"]
    train = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    info = tmp_path / "learner.json"
    _wait_for(info.exists, 120, "the learner")
    os.kill(json.loads(info.read_text())["pid"], signal.SIGKILL)
    out, err = train.communicate(timeout=120)
    assert train.returncode == 1, out + err
    last = err.strip().splitlines()[-1]
    assert last.startswith("robot-rl: the learner died 1 time (last exit code -9)")
    assert last.endswith(f"see {tmp_path / 'learner.log'}")
    assert "Traceback" not in err


def test_an_episode_sent_again_after_a_learner_restart_is_stored_once(tmp_path, make_sim_env):
    from robot_rl.rl.assembly import make_learner
    from robot_rl.rl.records import end_record
    from robot_rl.schema import load_config

    cfg = load_config([*TINY, *EPISODE], name="train")
    env = make_sim_env(*TINY[:5], *EPISODE)
    obs, _ = env.reset(seed=0)
    fields = {"action": np.zeros(env.action_space.shape, np.float32),
              "policy_action": np.zeros(env.action_space.shape, np.float32), "reward": np.float32(0),
              "terminated": np.bool_(False), "truncated": np.bool_(False), "intervention": np.bool_(False),
              "label": np.int8(0), "stamp": np.float64(1.0)}
    episode = [begin_record(7, obs), step_record(7, obs, fields), step_record(7, obs, fields), end_record(7, False)]
    for _ in range(2):  # a learner, then the same run folder's restarted learner
        learner = make_learner(cfg, env, tmp_path, [])
        learner.ingest("robot-a", episode, session=42)
        learner.ingest("robot-a", episode, session=42)  # sent again: the acknowledgement was lost
        learner.ingest("robot-a", episode, session=43)  # a new session's episode 7 is another episode
        learner.close()
    with EpisodeStore.open(tmp_path / "replay.zarr") as replay:
        assert [(e.attrs["key"], e.length) for e in replay.episodes()] == [("robot-a/42/7", 2), ("robot-a/43/7", 2)]


def test_a_child_never_started_stops_cleanly(tmp_path):
    """train's cleanup when it fails before starting the actor (it once raised there and left
    the learner running)."""
    from robot_rl.rl.supervisor import Supervised

    child = Supervised("actor", lambda: [sys.executable, "-c", "pass"], tmp_path / "actor.log", dict(os.environ), 0)
    child.stop()
    assert child.pid is None
