"""``robot-rl critic train`` and ``robot-rl critic eval``: critics from recordings, and
recordings judging critics.

Frame labels come from what was recorded: in a successful episode the last
``critic.success_frames`` frames, and every frame an operator labelled success, show the
task done; every other frame does not.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from robot_rl.config import ConfigError, data_paths
from robot_rl.critics.base import Frames
from robot_rl.critics.composer import RewardComposer
from robot_rl.critics.factory import make_critic
from robot_rl.critics.learned import FitConfig, LearnedProgress, SuccessClassifier
from robot_rl.critics.metrics import kendall_tau, success_scores, voc
from robot_rl.data.spec import LABEL_SUCCESS


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
                    labels[-cfg.critic.success_frames:] = True
                yield Recorded({c: data["obs"][c] for c in cameras}, bool(info.success), labels)


def train_critic(cfg: DictConfig, run_dir: Path) -> tuple[Path, dict[str, Any]]:
    """Train ``cfg.critic.name`` on ``cfg.data``; returns the file and a summary."""
    name = cfg.critic.name
    fit = FitConfig(epochs=cfg.critic.epochs, seed=cfg.seed, augmentation_pad=cfg.agent.augmentation_pad)
    episodes = list(recorded_episodes(cfg))
    started = time.perf_counter()
    if name == "learned_progress":
        demos = [e.frames for e in episodes if e.success]
        if not demos:
            raise ConfigError(f"invalid value for 'data': {cfg.data} holds no successful episode to learn from")
        failures = [e.frames for e in episodes if not e.success]
        critic: LearnedProgress | SuccessClassifier = LearnedProgress.train(demos, cfg.task.name, fit, failures)
        summary: dict[str, Any] = {"episodes": len(demos), "failures": len(failures)}
    elif name == "classifier":
        try:
            critic, summary = SuccessClassifier.train([e.frames for e in episodes], [e.labels for e in episodes],
                                                      cfg.task.name, fit)
        except ValueError as e:
            raise ConfigError(f"invalid value for 'data': {e}") from None
        summary = {"episodes": len(episodes), **{f"validation_{k}": v for k, v in summary.items()}}
    else:
        raise ConfigError(f"invalid value for 'critic.name': {name!r} is not trained from recordings; "
                          f"choose learned_progress or classifier")
    path = critic.save(Path(cfg.out) if cfg.out else run_dir / "critic.pt")
    summary.update(critic=name, task=cfg.task.name, path=str(path), train_s=round(time.perf_counter() - started, 1))
    return path, summary


def evaluate_critic(cfg: DictConfig, png: Path | None = None) -> tuple[list[list[Any]], dict[str, Any]]:
    """Score every recorded episode, forwards and (successful ones) reversed: VOC, Kendall τ,
    success precision/recall/F1/AUROC per frame, premature terminations, latency. Draws the
    progress curves to ``png``."""
    from robot_rl.critics.training import reward_config

    if cfg.critic.name == "env":
        raise ConfigError("invalid value for 'critic.name': name the critic to judge (learned_progress, classifier, "
                          "embedding, vlm_progress)")
    critic = make_critic(cfg)
    task = cfg.task.name
    composer = RewardComposer(reward_config(cfg))
    vocs: dict[str, list[float]] = {"success": [], "failure": [], "reversed": []}
    taus: list[float] = []
    probs, labels, valid, latency, curves = [], [], [], [], []
    premature = 0
    for episode in recorded_episodes(cfg):
        n = len(episode.labels)
        start = time.perf_counter()
        out = critic.score(episode.frames, task)
        latency.append((time.perf_counter() - start) * 1000 / n)
        vocs["success" if episode.success else "failure"].append(voc(out.progress[out.valid]))
        if episode.success:
            taus.append(kendall_tau(out.progress[out.valid]))
            backwards = critic.score({k: v[::-1] for k, v in episode.frames.items()}, task)
            vocs["reversed"].append(voc(backwards.progress[backwards.valid]))
        probs.append(out.success_prob)
        labels.append(episode.labels)
        valid.append(out.valid)
        curves.append((out.progress, episode.success))
        # would the composed reward have ended the episode before the task was done?
        composer.reset(float(out.progress[0]), bool(out.valid[0]))
        first_done = int(np.argmax(episode.labels)) if episode.labels.any() else n
        for t in range(1, n):
            _, ended = composer.step(float(out.progress[t]), float(out.success_prob[t]), bool(out.valid[t]))
            if ended:
                premature += t < first_done
                break
    if not curves:
        raise ConfigError(f"invalid value for 'data': {cfg.data} holds no complete episode")
    scores = success_scores(np.concatenate(probs), np.concatenate(labels), cfg.critic.threshold)

    def mean(values: list[float]) -> float | None:
        finite = [v for v in values if not np.isnan(v)]
        return round(float(np.mean(finite)), 3) if finite else None

    summary = {
        "critic": cfg.critic.name, "task": task, "episodes": len(curves),
        "successes": len(vocs["success"]), "failures": len(vocs["failure"]),
        "voc_success": mean(vocs["success"]), "voc_failure": mean(vocs["failure"]),
        "voc_reversed": mean(vocs["reversed"]), "kendall_success": mean(taus),
        "precision": round(scores.precision, 3), "recall": round(scores.recall, 3), "f1": round(scores.f1, 3),
        "auroc": round(scores.auroc, 3), "premature_termination_rate": round(premature / len(curves), 3),
        "latency_ms_per_frame_p50": round(float(np.percentile(latency, 50)), 3),
        "latency_ms_per_frame_p95": round(float(np.percentile(latency, 95)), 3),
        "invalid_frame_rate": round(1 - float(np.mean(np.concatenate(valid))), 3),  # a VLM's unparsable answers
    }
    rows = [[key, value] for key, value in summary.items() if key not in ("critic", "task")]
    if png is not None:
        draw_curves(curves, png)
        summary["png"] = str(png)
    return rows, summary


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
