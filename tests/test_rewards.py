"""Reward models: the metrics they are judged by, the reward composer, and the learned reward models on
tiny synthetic episodes (a scene that brightens as the task progresses)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robot_rl.config import ConfigError
from robot_rl.rewards.base import RewardOutput
from robot_rl.rewards.composer import RewardConfig, compose_rewards
from robot_rl.rewards.learned import FitConfig, LearnedProgress, SuccessClassifier, load_frame_model
from robot_rl.rewards.metrics import auroc, best_threshold, kendall_tau, success_scores, voc


# ------------------------------------------------------------------ metrics
def test_voc_and_kendall_read_the_order_of_progress():
    assert voc(np.arange(10)) == pytest.approx(1.0)
    assert voc(np.arange(10)[::-1]) == pytest.approx(-1.0)
    assert kendall_tau([0.0, 0.2, 0.1, 0.3]) == pytest.approx(2 / 3)
    assert np.isnan(voc(np.ones(5))) and np.isnan(voc([0.3]))  # a constant reward model says nothing


def test_success_scores_and_auroc():
    probs = np.array([0.9, 0.8, 0.3, 0.6, 0.1, 0.2])
    labels = np.array([1, 1, 1, 0, 0, 0], bool)
    s = success_scores(probs, labels, 0.5)
    assert (s.precision, s.recall, s.f1) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert s.auroc == pytest.approx(8 / 9)  # 8 of the 9 positive/negative pairs are ordered right
    assert auroc(probs, np.zeros(6, bool)) != auroc(probs, np.zeros(6, bool))  # NaN: one class only
    assert best_threshold(probs, labels) == pytest.approx(0.3)  # catches all three at one false positive


# ------------------------------------------------------------------ reward composer
def output(progress, success=None, valid=None):
    progress = np.asarray(progress, dtype=np.float32)
    success = np.zeros_like(progress) if success is None else np.asarray(success, dtype=np.float32)
    valid = np.ones(len(progress), bool) if valid is None else np.asarray(valid, bool)
    return RewardOutput(progress, success, valid)


def test_shaping_telescopes_so_it_cannot_change_which_policy_is_best():
    rng = np.random.default_rng(0)
    for _ in range(20):
        progress = rng.uniform(0, 1, 12)
        composed = compose_rewards(output(progress), RewardConfig(shaping=2.0, discount=0.9))
        discounts = 0.9 ** np.arange(11)
        # Σ γ^t (γΦ(s_t+1) − Φ(s_t)) = γ^T Φ(s_T) − Φ(s_0): it depends on the ends only
        assert discounts @ composed.rewards == pytest.approx(2.0 * (0.9 ** 11 * progress[-1] - progress[0]), abs=1e-5)
        assert not composed.terminated.any()


def test_success_needs_confirming_frames_and_ends_the_episode():
    success = [0, 0.9, 0.1, 0.9, 0.9, 0.9, 0.9]  # one flicker, then confirmed at the second of a run
    composed = compose_rewards(output(np.linspace(0, 1, 7), success), RewardConfig(confirm=2, shaping=0.0))
    assert composed.terminated.tolist() == [False, False, False, True]
    assert composed.rewards.tolist() == [0.0, 0.0, 0.0, 1.0]


def test_a_known_success_is_paid_as_one_whatever_the_reward_model_says():
    composed = compose_rewards(output([0.0, 0.2, 0.4]), RewardConfig(shaping=1.0, discount=1.0),
                               succeeded=[False, True])
    assert composed.terminated.tolist() == [False, True]
    assert composed.rewards.tolist() == pytest.approx([0.2, 1.0 - 0.2])  # terminal potential is 0


def test_frames_the_reward_model_could_not_judge_keep_the_last_potential():
    composed = compose_rewards(output([0.2, 0.9, 0.5], valid=[True, False, True]),
                               RewardConfig(shaping=1.0, discount=1.0))
    assert composed.rewards.tolist() == pytest.approx([0.0, 0.3])
    with pytest.raises(ValueError, match="at least two frames"):
        compose_rewards(output([0.5]))


# ------------------------------------------------------------------ learned reward models
def synthetic_episode(rng, length, size=16, reverse=False):
    """Two cameras whose mean brightness rises with progress; noise on top."""
    level = np.linspace(20, 230, length)[::-1 if reverse else 1]
    frames = {}
    for name in ("front", "wrist"):
        noise = rng.normal(0, 10, (length, size, size, 3))
        frames[name] = np.clip(level[:, None, None, None] + noise, 0, 255).astype(np.uint8)
    return frames


FAST = FitConfig(epochs=25, batch_size=32, augmentation_pad=1)


def test_learned_progress_rises_along_held_out_successes_and_falls_on_reversed_ones(tmp_path):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    reward_model = LearnedProgress.train([synthetic_episode(rng, 20) for _ in range(6)], "brighten", FAST)
    held_out = synthetic_episode(rng, 20)
    scored = reward_model.score(held_out, "brighten")
    assert voc(scored.progress) > 0.9 and scored.valid.all()
    assert voc(reward_model.score({k: v[::-1] for k, v in held_out.items()}, "brighten").progress) < -0.9
    loaded = load_frame_model(reward_model.save(tmp_path / "progress.pt"))
    assert isinstance(loaded, LearnedProgress)
    np.testing.assert_allclose(loaded.score(held_out, "brighten").progress, scored.progress, atol=1e-6)
    with pytest.raises(ValueError, match="trained on task 'brighten'"):
        reward_model.score(held_out, "stack_cups")
    with pytest.raises(ValueError, match="missing"):
        reward_model.score({"front": held_out["front"]}, "brighten")
    with pytest.raises(ValueError, match="same number of frames"):
        reward_model.score({"front": held_out["front"], "wrist": held_out["wrist"][:5]}, "brighten")


def test_classifier_learns_success_frames_and_chooses_its_threshold(tmp_path):
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    episodes = [synthetic_episode(rng, 20) for _ in range(8)]
    labels = [np.arange(20) >= 14 for _ in episodes]  # the brightest frames are "done"
    reward_model, validation = SuccessClassifier.train(episodes, labels, "brighten", FAST)
    assert validation["f1"] > 0.8 and 0 < validation["threshold"] < 1
    probs = np.concatenate([reward_model.score(synthetic_episode(rng, 20), "brighten").success_prob for _ in range(3)])
    assert success_scores(probs, np.tile(np.arange(20) >= 14, 3)).f1 > 0.8
    loaded = load_frame_model(reward_model.save(tmp_path / "classifier.pt"))
    assert isinstance(loaded, SuccessClassifier) and loaded.threshold == reward_model.threshold
    with pytest.raises(ValueError, match="both classes"):
        SuccessClassifier.train(episodes, [np.zeros(20, bool) for _ in episodes], "brighten", FAST)


def test_loading_a_missing_or_foreign_file_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no reward model"):
        load_frame_model(tmp_path / "none.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a robot_rl reward model"):
        load_frame_model(tmp_path / "other.pt")


# ------------------------------------------------------------------ reward models in use
TINY_CAMERAS = ["cameras=sim64", "cameras.front.resolution=[32,32]", "cameras.front.size=[32,32]",
                "cameras.wrist.resolution=[32,32]", "cameras.wrist.size=[32,32]"]


def test_an_inline_reward_model_replaces_the_envs_reward_and_decides_success(make_sim_env):
    from robot_rl.rewards.composer import RewardComposer
    from robot_rl.rewards.learned import FrameNet
    from robot_rl.rewards.training import ModelReward

    torch.manual_seed(0)
    env = make_sim_env("task=pick_cube", *TINY_CAMERAS, "task.max_steps=30")
    reward_model = LearnedProgress(FrameNet(["front", "wrist"], 32), "pick_cube", threshold=0.9)  # random weights
    config = RewardConfig(shaping=1.0, discount=0.9, threshold=0.5, confirm=2)
    wrapped = ModelReward(env, reward_model, "pick_cube", config)
    assert env.terminate_on_success is False  # the env's own success no longer ends the episode
    obs, _ = wrapped.reset(seed=0)
    judge = lambda o: reward_model.score({n: o[n][None] for n in ("front", "wrist")}, "pick_cube")  # noqa: E731
    expected = RewardComposer(config)
    expected.reset(float(judge(obs).progress[0]))
    for _ in range(5):
        obs, reward, terminated, _, info = wrapped.step(np.zeros(4, np.float32))
        out = judge(obs)
        want, done = expected.step(float(out.progress[0]), float(out.success_prob[0]))
        assert reward == pytest.approx(want) and terminated == done
        assert info["reward_progress"] == pytest.approx(float(out.progress[0])) and "env_reward" in info
    reward_model.threshold = 0.0  # now every frame looks done: success after `confirm` frames
    wrapped.reset(seed=1)
    ends = [wrapped.step(np.zeros(4, np.float32))[2] for _ in range(2)]
    assert ends == [False, True]


def test_reward_model_train_and_eval_from_the_command_line(tmp_path, capsys):
    import json

    from robot_rl.cli import main

    store = tmp_path / "demos.zarr"
    common = ["task=pick_cube", *TINY_CAMERAS, "logging.progress_bar=false"]
    assert main(["rollout", *common, "policy=expert", "episodes=3", f"record={store}",
                 f"run_dir={tmp_path / 'a'}"]) == 0
    assert main(["rollout", *common, "policy=random", "episodes=2", "task.max_steps=15", f"record={store}",
                 f"run_dir={tmp_path / 'b'}"]) == 0
    for name in ("learned_progress", "classifier"):
        assert main(["reward-model", "train", *common, f"reward_model.name={name}", "reward_model.epochs=2",
                     f"data={store}",
                     f"out={tmp_path / name}.pt", f"run_dir={tmp_path / 'c'}"]) == 0
    capsys.readouterr()
    assert main(["reward-model", "eval", "--json", *common, "reward_model.name=learned_progress",
                 f"reward_model.path={tmp_path / 'learned_progress.pt'}", f"data={store}",
                 f"run_dir={tmp_path / 'd'}"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["episodes"], summary["successes"], summary["failures"]) == (5, 3, 2)
    assert {"voc_success", "voc_reversed", "f1", "auroc", "premature_termination_rate",
            "latency_ms_per_frame_p95"} <= set(summary)
    assert (tmp_path / "d" / "progress_curves.png").stat().st_size > 1000
    # the wrong kind of reward model, or no data: one line, exit code 2
    assert main(["reward-model", "eval", *common, "reward_model.name=classifier",
                 f"reward_model.path={tmp_path / 'learned_progress.pt'}",
                 f"data={store}", f"run_dir={tmp_path / 'e'}"]) == 2
    assert "holds a learned_progress reward model, not classifier" in capsys.readouterr().err
    assert main(["reward-model", "train", *common, "reward_model.name=learned_progress",
                 f"data={tmp_path / 'none.zarr'}"]) == 2
    assert "no EpisodeStore" in capsys.readouterr().err


def test_colour_jitter_turns_each_images_hues_and_keeps_greys():
    from robot_rl.layers import colour_jitter

    torch.manual_seed(0)
    images = torch.zeros((64, 2, 2, 3), dtype=torch.uint8)
    images[:, 0, 0] = torch.tensor([200, 30, 20], dtype=torch.uint8)  # a red pixel
    images[:, 1, 1] = 128  # a grey one
    assert colour_jitter(images, 0.0, 0.0) is images
    turned = colour_jitter(images, 180.0)
    assert turned.dtype == torch.uint8 and turned.shape == images.shape
    assert (turned[:, 1, 1].int() - 128).abs().max() <= 1  # greys stay grey
    red = turned[:, 0, 0].int()
    assert len({tuple(p) for p in red.tolist()}) > 30  # each image its own hue
    assert (red[:, 2] > red[:, 0]).any() and (red[:, 1] > red[:, 0]).any()  # some turned blue, some green
    bright = colour_jitter(images, 0.0, 0.2)[:, 1, 1].float()
    assert bright.min() >= 128 * 0.8 - 1 and bright.max() <= 128 * 1.2 + 1 and bright.std() > 5


def test_reward_model_train_passes_the_colour_jitter_on(monkeypatch, tmp_path):
    from robot_rl.rewards import evaluate
    from robot_rl.schema import load_config

    rng = np.random.default_rng(0)
    monkeypatch.setattr(evaluate, "recorded_episodes", lambda cfg: iter(
        [evaluate.Recorded(synthetic_episode(rng, 8), True, np.arange(8) >= 6) for _ in range(3)]))
    seen, train = [], LearnedProgress.train.__func__

    def spy(cls, demos, task, fit, failures=()):
        seen.append(fit)
        return train(cls, demos, task, fit, failures)

    monkeypatch.setattr(LearnedProgress, "train", classmethod(spy))
    cfg = load_config(["reward_model.name=learned_progress", "reward_model.epochs=1", "reward_model.hue_jitter=90",
                       "reward_model.brightness_jitter=0.1", f"out={tmp_path / 'p.pt'}"], name="train")
    evaluate.train_reward_model(cfg, tmp_path)
    assert (seen[0].hue_jitter, seen[0].brightness_jitter) == (90, 0.1)
    for bad in ("reward_model.hue_jitter=200", "reward_model.brightness_jitter=1"):
        with pytest.raises(ConfigError, match=bad.split("=")[0]):
            load_config([bad], name="train")
