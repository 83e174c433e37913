"""Learned reward models on pick_cube from pixels, judged as the literature judges them.

    python benchmarks/reward_models.py [--demos 20] [--held-out 10] [--json]

learned_progress is trained on ``--demos`` scripted-expert demonstrations (up to their first
successful frame; progress t / (T − 1)) and random-policy episodes (progress 0), and read
on held-out successful episodes, the same episodes reversed, and random-policy failures:
VOC (Spearman of progress vs frame order) and Kendall τ, averaged over episodes. The
success classifier is trained on the demonstrations run on past their success (the sim's
ground truth labels every frame) plus random-policy episodes, and scored on held-out
frames of both kinds: precision, recall, F1 at the threshold it chose on its validation
split, and AUROC. Latency is per frame, batch of one episode, on this CPU.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import torch

from robot_rl.env.random_actions import random_action
from robot_rl.report import print_report
from robot_rl.rewards.learned import FitConfig, LearnedProgress, SuccessClassifier
from robot_rl.rewards.metrics import kendall_tau, success_scores, voc
from robot_rl.robots import make_env
from robot_rl.schema import load_config
from robot_rl.sim.expert import ScriptedExpert

TASK = "pick_cube"


def episodes(env, seeds, policy: str, steps: int) -> list[tuple[dict[str, np.ndarray], np.ndarray]]:
    """(camera frames (T + 1), per-frame success from the sim) for each seed."""
    out = []
    for seed in seeds:
        obs, _ = env.reset(seed=int(seed))
        expert = ScriptedExpert(env, seed=int(seed))
        rng = np.random.default_rng(int(seed))
        frames, success = [obs], [False]
        for _ in range(steps):
            action = expert.act(obs) if policy == "expert" else random_action(env.action_space, rng)
            obs, _, terminated, truncated, info = env.step(action.astype(np.float32))
            frames.append(obs)
            success.append(bool(info["is_success"]))
            if terminated or truncated:
                break
        out.append(({name: np.stack([f[name] for f in frames]) for name in env.images}, np.array(success)))
    return out


def until_success(frames: dict[str, np.ndarray], success: np.ndarray) -> dict[str, np.ndarray]:
    end = int(np.argmax(success)) + 1 if success.any() else len(success)
    return {name: images[:end] for name, images in frames.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demos", type=int, default=20)
    parser.add_argument("--held-out", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    env = make_env(load_config([f"task={TASK}", "cameras=sim64", "task.terminate_on_success=false",
                                "task.max_steps=60"]))
    train_seeds, test_seeds = range(args.demos), range(10_000, 10_000 + args.held_out)
    expert_train = episodes(env, train_seeds, "expert", 40)
    expert_test = episodes(env, test_seeds, "expert", 40)
    random_train = episodes(env, range(20_000, 20_000 + args.demos // 2), "random", 40)
    random_test = episodes(env, range(30_000, 30_000 + args.held_out), "random", 40)
    env.close()
    data_s = time.perf_counter() - started

    config = FitConfig(epochs=args.epochs)
    demos = [until_success(f, s) for f, s in expert_train if s.any()]
    t0 = time.perf_counter()
    progress = LearnedProgress.train(demos, TASK, config, failures=[f for f, _ in random_train])
    progress_train_s = time.perf_counter() - t0
    successes = [until_success(f, s) for f, s in expert_test if s.any()]
    reversed_ = [{name: images[::-1] for name, images in e.items()} for e in successes]
    failures = [f for f, s in random_test if not s.any()]

    def mean_metric(metric, eps):
        values = [metric(progress.score(e, TASK).progress) for e in eps]
        return float(np.nanmean(values)) if values else float("nan")

    latency = []
    for e in successes:
        t0 = time.perf_counter()
        progress.score(e, TASK)
        latency.append((time.perf_counter() - t0) * 1000 / len(next(iter(e.values()))))

    t0 = time.perf_counter()
    labelled = expert_train + random_train
    classifier, validation = SuccessClassifier.train([f for f, _ in labelled], [s for _, s in labelled], TASK, config)
    classifier_train_s = time.perf_counter() - t0
    held = expert_test + random_test
    probs = np.concatenate([classifier.score(f, TASK).success_prob for f, _ in held])
    labels = np.concatenate([s for _, s in held])
    scores = success_scores(probs, labels, 0.5)

    summary = {
        "voc_success": round(mean_metric(voc, successes), 3), "voc_reversed": round(mean_metric(voc, reversed_), 3),
        "voc_failure": round(mean_metric(voc, failures), 3), "kendall_success": round(mean_metric(kendall_tau,
                                                                                                  successes), 3),
        "classifier_f1": round(scores.f1, 3), "classifier_precision": round(scores.precision, 3),
        "classifier_recall": round(scores.recall, 3), "classifier_auroc": round(scores.auroc, 3),
        "classifier_threshold": round(validation["threshold"], 3), "progress_ms_per_frame_p50":
            round(float(np.percentile(latency, 50)), 3), "demos": len(demos), "held_out": len(successes),
        "failures": len(failures), "data_s": round(data_s, 1), "progress_train_s": round(progress_train_s, 1),
        "classifier_train_s": round(classifier_train_s, 1),
    }
    rows = [
        ["learned_progress VOC, held-out successes", summary["voc_success"], ">= 0.8", summary["voc_success"] >= 0.8],
        ["learned_progress VOC, reversed successes", summary["voc_reversed"], "<= 0.2", summary["voc_reversed"] <= 0.2],
        ["learned_progress VOC, random-policy failures", summary["voc_failure"], "", None],
        ["learned_progress Kendall τ, successes", summary["kendall_success"], "", None],
        ["learned_progress ms per frame (p50)", summary["progress_ms_per_frame_p50"], "", None],
        ["classifier F1, held-out frames", summary["classifier_f1"], ">= 0.9", summary["classifier_f1"] >= 0.9],
        ["classifier precision / recall", f"{scores.precision:.3f} / {scores.recall:.3f}", "", None],
        ["classifier AUROC", summary["classifier_auroc"], "", None],
    ]
    print_report(f"reward models on {TASK} from 64×64 pixels: {len(demos)} demos, {len(successes)} held-out successes, "
                 f"{len(failures)} failures", ["metric", "value", "target", "met"], rows, summary, args.json)


if __name__ == "__main__":
    main()
