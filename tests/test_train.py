"""Actor and learner together: the two-process train command, a learner killed with -9 and
restarted, the in-process loop, and eval of a checkpoint."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

from robot_rl.cli import main
from robot_rl.data import EpisodeStore
from robot_rl.schema import load_config

TINY = [
    "task=reach", "cameras.front.resolution=[32,32]", "cameras.front.size=[32,32]",
    "cameras.wrist.resolution=[32,32]", "cameras.wrist.size=[32,32]", "train.random_steps=50",
    "train.eval_episodes=1", "learner.warmup_transitions=50", "learner.batch_size=16", "learner.publish_every=10",
    "learner.checkpoint_every=20", "agent.hidden=[32,32]", "agent.encoder_features=16", "logging.progress_bar=false",
    "train.threads=1", "logging.wandb=disabled",
]


def _finite_checkpoint(path):
    state = torch.load(path, map_location="cpu", weights_only=True)["agent"]
    for name in ("encoder", "critic", "policy"):
        assert all(torch.isfinite(t).all() for t in state[name].values()), name
    return state["updates"]


def test_train_runs_learner_and_actor_as_two_processes(tmp_path, capsys):
    code = main(["train", *TINY, "train.env_steps=250", "train.eval_every=250", f"run_dir={tmp_path}"])
    out = capsys.readouterr().out
    assert code == 0, (tmp_path / "learner.log").read_text()
    assert "env steps" in out and "eval success" in out
    version = int(out.split("policy_weights=v")[1].split()[0])
    assert version > 1  # weights published after training started reached the actor
    assert _finite_checkpoint(tmp_path / "learner" / "checkpoint.pt") > 0
    metrics = [json.loads(line) for line in (tmp_path / "learner" / "metrics.jsonl").read_text().splitlines()]
    assert metrics and all(np.isfinite(m["critic_loss"]) for m in metrics)
    with EpisodeStore.open(tmp_path / "actor-0.zarr") as actor_store, \
            EpisodeStore.open(tmp_path / "learner" / "replay.zarr") as learner_store:
        assert actor_store.num_steps == 250
        assert learner_store.num_steps == 250  # every streamed step arrived, once


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_learner(run_dir, port, token, log):
    args = [sys.executable, "-m", "robot_rl.cli", "learner", *TINY, f"learner.address=127.0.0.1:{port}",
            f"run_dir={run_dir}"]
    return subprocess.Popen(args, env={**os.environ, "ROBOT_RL_TOKEN": token}, stdout=log, stderr=subprocess.STDOUT)


def _wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
def test_learner_killed_and_restarted_resumes_and_loses_no_committed_episode(tmp_path):
    from robot_rl.rl.actor_process import run_actor

    port, token = _free_port(), "test-token"
    log_path = tmp_path / "learner.log"
    log = open(log_path, "ab")
    learner = _start_learner(tmp_path, port, token, log)
    cfg = load_config([*TINY, "train.env_steps=600", "train.eval_every=600", f"learner.address=127.0.0.1:{port}",
                       f"learner.token={token}"], name="train")
    result = {}
    actor = threading.Thread(target=lambda: result.setdefault("report", run_actor(cfg, tmp_path, False)))
    actor.start()
    try:
        checkpoint = tmp_path / "learner" / "checkpoint.pt"
        _wait_for(checkpoint.exists, 180, "the first checkpoint")
        with EpisodeStore.open(tmp_path / "learner" / "replay.zarr") as store:
            before = [(e.index, e.length) for e in store.episodes()]
        learner.send_signal(signal.SIGKILL)
        learner.wait()
        updates_at_kill = _finite_checkpoint(checkpoint)
        learner = _start_learner(tmp_path, port, token, log)
        actor.join(timeout=300)
        assert not actor.is_alive(), "the actor did not finish after the learner came back"
    finally:
        learner.send_signal(signal.SIGTERM)
        learner.wait(timeout=60)
        log.close()
    text = log_path.read_text()
    assert "resumed from" in text, text
    report = result["report"]
    assert report.env_steps == 600
    assert _finite_checkpoint(checkpoint) > updates_at_kill  # training went on from the checkpoint
    with EpisodeStore.open(tmp_path / "learner" / "replay.zarr") as store:
        after = {e.index: e.length for e in store.episodes()}
    assert all(after.get(i) == n for i, n in before)  # nothing the learner had committed was lost
    with EpisodeStore.open(tmp_path / "actor-0.zarr") as store:
        # the budget may end the last episode early (an earlier one that succeeded moved the boundary)
        assert store.num_steps == 600 and all(e.complete for e in store.episodes()[:-1])


def test_in_process_training_is_deterministic_and_evaluable(tmp_path, capsys):
    args = [*TINY, "train.processes=1", "train.env_steps=120", "train.eval_every=120"]
    assert main(["train", *args, f"run_dir={tmp_path / 'a'}", "logging.wandb=offline"]) == 0
    assert main(["train", *args, f"run_dir={tmp_path / 'b'}"]) == 0
    capsys.readouterr()
    assert list((tmp_path / "a" / "wandb").glob("offline-run-*"))  # wandb, offline: files in the run folder
    a = torch.load(tmp_path / "a" / "learner" / "checkpoint.pt", weights_only=True)["agent"]["policy"]
    b = torch.load(tmp_path / "b" / "learner" / "checkpoint.pt", weights_only=True)["agent"]["policy"]
    assert all(torch.equal(a[k], b[k]) for k in a)

    assert main(["eval", *TINY, f"checkpoint={tmp_path / 'a' / 'learner'}", "episodes=2",
                 f"run_dir={tmp_path / 'eval'}"]) == 0
    out = capsys.readouterr().out
    assert "episode" in out and out.count("100000") == 1


def test_eval_without_a_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["eval", f"checkpoint={tmp_path / 'none.pt'}", f"run_dir={tmp_path}"]) == 2
    assert "no checkpoint at" in capsys.readouterr().err


def test_actor_refuses_to_start_without_a_token(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ROBOT_RL_TOKEN", raising=False)
    assert main(["actor", *TINY, f"run_dir={tmp_path}"]) == 2
    assert "learner.token" in capsys.readouterr().err


def test_training_with_the_discrete_gripper_critic(tmp_path, capsys):
    assert main(["train", *TINY, "train.processes=1", "train.env_steps=100", "train.eval_every=100",
                 "task=pick_cube", "task.max_steps=50", "task.action.gripper_mode=toggle", "agent.gripper_critic=true",
                 f"run_dir={tmp_path}"]) == 0
    metrics = [json.loads(line) for line in (tmp_path / "learner" / "metrics.jsonl").read_text().splitlines()]
    assert metrics and all(np.isfinite(m["gripper_loss"]) for m in metrics)
    with EpisodeStore.open(tmp_path / "learner" / "replay.zarr") as store:
        grip = np.concatenate([store.load_episode(e.index)["action"][:, -1] for e in store.episodes()])
    learned = grip[50:]  # after the random warm-up, the gripper commands are the critic's choices
    assert set(np.unique(learned)) <= {-1.0, 0.0, 1.0}


def test_demos_are_recorded_once_and_topped_up(tmp_path):
    from robot_rl.rl.assembly import record_demos

    cfg = load_config([*TINY, "task=pick_cube"], name="train")
    path = tmp_path / "demos.zarr"
    record_demos(cfg, path, 2)
    record_demos(cfg, path, 3)
    record_demos(cfg, path, 3)  # already there: nothing recorded
    with EpisodeStore.open(path) as store:
        episodes = store.episodes()
        assert len(episodes) == 3 and all(e.source == "demo" and e.success for e in episodes)
