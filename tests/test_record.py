"""robot-rl record (teleoperated demos) and training with the simulated operator."""

import numpy as np

from robot_rl.cli import main
from robot_rl.data import EpisodeStore

FAST = ["cameras=sim64", "cameras.front.size=[32,32]", "cameras.wrist.size=[32,32]", "logging.progress_bar=false",
        "logging.wandb=disabled"]


def test_record_demonstrations_with_the_simulated_operator(tmp_path, capsys):
    store = tmp_path / "demos.zarr"
    assert main(["record", "task=pick_cube", "teleop=sim_expert", "teleop.stuck_steps=1", "teleop.guide_steps=200",
                 "teleop.budget_start=1", "teleop.budget_end=1", "episodes=2", f"record={store}",
                 f"run_dir={tmp_path / 'run'}", *FAST]) == 0
    assert "recorded 2 demonstrations" in capsys.readouterr().out
    with EpisodeStore.open(store) as s:
        episodes = s.episodes()
        assert len(episodes) == 2 and all(e.source == "demo" and e.success for e in episodes)
        data = s.load_episode(0)
        assert data["intervention"].all()  # every step of a demonstration is the operator's
        assert data["label"][-1] == 1  # the operator labelled the success


def test_record_needs_an_operator(tmp_path, capsys):
    assert main(["record", f"run_dir={tmp_path}", *FAST]) == 2
    assert "recording needs an operator" in capsys.readouterr().err


def test_training_with_the_simulated_operator_uses_its_steps_as_demos(tmp_path, capsys):
    assert main(["train", "task=pick_cube", "teleop=sim_expert", "train.processes=1", "train.env_steps=150",
                 "train.eval_every=150", "train.eval_episodes=1", "train.random_steps=50",
                 "learner.warmup_transitions=50", "learner.batch_size=16", "agent.hidden=[32,32]",
                 f"run_dir={tmp_path}", *FAST]) == 0
    with EpisodeStore.open(tmp_path / "learner" / "replay.zarr") as s:
        flags = np.concatenate([s.load_episode(e.index)["intervention"] for e in s.episodes()])
    assert 0 < flags.mean() < 1  # the operator stepped in, but not always
