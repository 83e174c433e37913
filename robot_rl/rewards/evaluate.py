"""``robot-rl reward-model train`` and ``robot-rl reward-model eval``: reward models from recordings, and
recordings judging reward models.

Frame labels come from what was recorded: in a successful episode the last
``reward_model.success_frames`` frames, and every frame an operator labelled success, show the
task done; every other frame does not.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from robot_rl.config import ConfigError, data_paths
from robot_rl.data.spec import LABEL_SUCCESS
from robot_rl.rewards.base import Frames, RewardModel, RewardOutput
from robot_rl.rewards.composer import RewardComposer
from robot_rl.rewards.factory import make_reward_model
from robot_rl.rewards.learned import FitConfig, LearnedProgress, SuccessClassifier
from robot_rl.rewards.metrics import kendall_tau, success_scores, voc


@dataclass
class Recorded:
    frames: Frames
    success: bool
    labels: np.ndarray  # (T + 1,) bool per frame: the task shows done


def recorded_episodes(cfg: DictConfig) -> Iterator[Recorded]:
    """The complete episodes of the stores in ``cfg.data``, with the configured cameras' frames."""
    from robot_rl.data import EpisodeStore

    cameras = list(cfg.cameras)
    for path in data_paths(cfg):
        with EpisodeStore.open(path) as store:
            missing = [c for c in cameras if c not in store.spec.obs]
            if missing:
                raise ConfigError(f"invalid value for 'cameras': {path} has no camera {missing} "
                                  f"(it holds {sorted(store.spec.obs)})")
            for info, data in store.iter_episodes(complete=True):
                labels = np.zeros(info.length + 1, dtype=bool)
                labels[1:] = data["label"] == LABEL_SUCCESS  # the frame after the labelled step
                if info.success:
                    labels[-cfg.reward_model.success_frames:] = True
                yield Recorded({c: data["obs"][c] for c in cameras}, bool(info.success), labels)


def train_reward_model(cfg: DictConfig, run_dir: Path) -> tuple[Path, dict[str, Any]]:
    """Train ``cfg.reward_model.name`` on ``cfg.data``; returns the file and a summary."""
    name = cfg.reward_model.name
    fit = FitConfig(epochs=cfg.reward_model.epochs, seed=cfg.seed, augmentation_pad=cfg.agent.augmentation_pad,
                    hue_jitter=cfg.reward_model.hue_jitter, brightness_jitter=cfg.reward_model.brightness_jitter)
    episodes = list(recorded_episodes(cfg))
    started = time.perf_counter()
    if name == "learned_progress":
        demos = [e.frames for e in episodes if e.success]
        if not demos:
            raise ConfigError(f"invalid value for 'data': {cfg.data} holds no successful episode to learn from")
        failures = [e.frames for e in episodes if not e.success]
        reward_model: LearnedProgress | SuccessClassifier = LearnedProgress.train(demos, cfg.task.name, fit, failures)
        summary: dict[str, Any] = {"episodes": len(demos), "failures": len(failures)}
    elif name == "classifier":
        try:
            reward_model, summary = SuccessClassifier.train([e.frames for e in episodes], [e.labels for e in episodes],
                                                      cfg.task.name, fit)
        except ValueError as e:
            raise ConfigError(f"invalid value for 'data': {e}") from None
        summary = {"episodes": len(episodes), **{f"validation_{k}": v for k, v in summary.items()}}
    else:
        raise ConfigError(f"invalid value for 'reward_model.name': {name!r} is not trained from recordings; "
                          f"choose learned_progress or classifier")
    path = reward_model.save(Path(cfg.out) if cfg.out else run_dir / "reward_model.pt")
    summary.update(reward_model=name, task=cfg.task.name, path=str(path), train_s=round(time.perf_counter() - started,
                                                                                        1))
    return path, summary


def evaluate_reward_model(cfg: DictConfig, png: Path | None = None) -> tuple[list[list[Any]], dict[str, Any]]:
    """Score every recorded episode, forwards and (successful ones) reversed: VOC, Kendall τ,
    success precision/recall/F1/AUROC per frame, premature terminations, latency. Draws the
    progress curves to ``png``."""
    from robot_rl.rewards.training import reward_config

    if cfg.reward_model.name == "env":
        raise ConfigError("invalid value for 'reward_model.name': name the reward model to judge (learned_progress, "
                          "classifier, embedding, vlm_progress)")
    reward_model = make_reward_model(cfg)
    composer = RewardComposer(reward_config(cfg))
    judged = _Judged()
    for episode in recorded_episodes(cfg):
        _judge_episode(reward_model, composer, episode, cfg.task.name, judged)
    if not judged.curves:
        raise ConfigError(f"invalid value for 'data': {cfg.data} holds no complete episode")
    summary = _summary(cfg, judged)
    rows = [[key, value] for key, value in summary.items() if key not in ("reward_model", "task")]
    if png is not None:
        draw_curves(judged.curves, png)
        summary["png"] = str(png)
    return rows, summary


@dataclass
class _Judged:
    """What :func:`evaluate_reward_model` gathers, episode by episode."""

    vocs: dict[str, list[float]] = field(default_factory=lambda: {"success": [], "failure": [], "reversed": []})
    taus: list[float] = field(default_factory=list)
    probs: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    valid: list[np.ndarray] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    curves: list[tuple[np.ndarray, bool]] = field(default_factory=list)
    premature: int = 0


def _judge_episode(reward_model: RewardModel, composer: RewardComposer, episode: Recorded, task: str,
                   judged: _Judged) -> None:
    """Score one episode (and a successful one reversed) and add what the figures need to ``judged``."""
    n = len(episode.labels)
    start = time.perf_counter()
    out = reward_model.score(episode.frames, task)
    judged.latency.append((time.perf_counter() - start) * 1000 / n)
    judged.vocs["success" if episode.success else "failure"].append(voc(out.progress[out.valid]))
    if episode.success:
        judged.taus.append(kendall_tau(out.progress[out.valid]))
        backwards = reward_model.score({k: v[::-1] for k, v in episode.frames.items()}, task)
        judged.vocs["reversed"].append(voc(backwards.progress[backwards.valid]))
    judged.probs.append(out.success_prob)
    judged.labels.append(episode.labels)
    judged.valid.append(out.valid)
    judged.curves.append((out.progress, episode.success))
    judged.premature += _ends_early(composer, out, episode.labels)


def _ends_early(composer: RewardComposer, out: RewardOutput, labels: np.ndarray) -> bool:
    """Would the composed reward have ended the episode before the task was done?"""
    n = len(labels)
    composer.reset(float(out.progress[0]), bool(out.valid[0]))
    first_done = int(np.argmax(labels)) if labels.any() else n
    for t in range(1, n):
        _, ended = composer.step(float(out.progress[t]), float(out.success_prob[t]), bool(out.valid[t]))
        if ended:
            return t < first_done
    return False


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if not np.isnan(v)]
    return round(float(np.mean(finite)), 3) if finite else None


def _summary(cfg: DictConfig, judged: _Judged) -> dict[str, Any]:
    scores = success_scores(np.concatenate(judged.probs), np.concatenate(judged.labels), cfg.reward_model.threshold)
    vocs, episodes = judged.vocs, len(judged.curves)
    return {
        "reward_model": cfg.reward_model.name, "task": cfg.task.name, "episodes": episodes,
        "successes": len(vocs["success"]), "failures": len(vocs["failure"]),
        "voc_success": _mean(vocs["success"]), "voc_failure": _mean(vocs["failure"]),
        "voc_reversed": _mean(vocs["reversed"]), "kendall_success": _mean(judged.taus),
        "precision": round(scores.precision, 3), "recall": round(scores.recall, 3), "f1": round(scores.f1, 3),
        "auroc": round(scores.auroc, 3), "premature_termination_rate": round(judged.premature / episodes, 3),
        "latency_ms_per_frame_p50": round(float(np.percentile(judged.latency, 50)), 3),
        "latency_ms_per_frame_p95": round(float(np.percentile(judged.latency, 95)), 3),
        "invalid_frame_rate": round(1 - float(np.mean(np.concatenate(judged.valid))), 3),  # a VLM's unparsable answers
    }


def draw_curves(curves: list[tuple[np.ndarray, bool]], path: Path, size: tuple[int, int] = (360, 640)) -> Path:
    """Each episode's progress against normalised time: green successes, red failures."""
    import cv2

    h, w = size
    canvas = np.full((h, w, 3), 255, np.uint8)
    margin = 30
    cv2.rectangle(canvas, (margin, margin), (w - margin, h - margin), (200, 200, 200), 1)
    for progress, success in curves:
        if len(progress) < 2:
            continue
        x = margin + np.linspace(0, 1, len(progress)) * (w - 2 * margin)
        y = h - margin - np.clip(progress, 0, 1) * (h - 2 * margin)
        points = np.stack([x, y], axis=1).round().astype(np.int32)
        cv2.polylines(canvas, [points], False, (60, 160, 60) if success else (60, 60, 200), 1, cv2.LINE_AA)
    cv2.putText(canvas, "progress vs time (green: success, red: failure)", (margin, 20), cv2.FONT_HERSHEY_SIMPLEX,
                0.45, (0, 0, 0), 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), canvas):
        raise OSError(f"could not write {path}")
    return path
