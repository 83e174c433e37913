"""Learned reward models on pick_cube from pixels, judged where they can be wrong.

    python benchmarks/reward_models.py [--demos 20] [--held-out 10] [--near-misses 0] [--json] [--quick]

Training sees the rig's usual views only, with DrQ shifts and colour jitter (``--hue-jitter``:
colours turned about the grey axis by up to 180°, brightness ±20 %). learned_progress:
``--demos`` scripted-expert demonstrations (up to their first successful frame; progress
t / (T − 1)) and random-policy episodes (progress 0). The success classifier: the
demonstrations run on past their success (the sim labels every frame) and random-policy
episodes; ``--near-misses N`` adds N recorded near misses of each judged kind (every frame
negative), as an operator can record them on a rig.

Judged on held-out episodes (the table marks each target met or not; ``targets_met`` in the JSON):

- VOC, the value-order correlation of GVL (Spearman of progress vs frame order), on successful
  episodes, and on successes seen from a camera pose and with a cube colour not seen in
  training (``UNSEEN_VIEW``: the front camera moved and turned, a blue cube); beside it the
  same model trained without colour jitter. No reversed episodes: for a per-frame model their
  VOC is exactly −VOC, a target that cannot fail.
- VOC on failures. There is no one right VOC on a failure: progress should rise while an
  attempt goes well and fall when it is undone. The failure judged is the undone attempt
  (``NearMissExpert`` "drop": the cube lifted 4 cm, let go, the arm back where it started),
  where the sim's privileged progress has a VOC of about −0.6; the target is ≤ −0.3, which a
  model that reads time (+1) or ignores the scene (about 0) misses. The near misses that
  stall (the cube held 1 cm up; the gripper closed on the table beside the cube) rise, then
  stay: their VOC is shown beside the sim's with no target, and so is how many of the near
  misses' frames the model reads as done (progress ≥ its threshold).
- classifier F1 on hard negatives: the success frames of held-out successes against the
  frames of held-out near misses once the miss has happened (the cube held 1 cm up, the
  gripper closed beside it) and each success's frame one step before it succeeded, at the
  threshold the classifier chose on its validation split. The easy mix of before (held-out
  expert and random-policy frames) and F1 on the unseen view are shown too.

Latency is per frame, batch of one episode, on ``--threads`` (1) CPU threads. ``--quick``: a
smoke run of about a minute (few episodes, two epochs: its figures are not the benchmark's).
With ``--json`` the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import torch

from robot_rl.env.random_actions import random_action
from robot_rl.report import print_report
from robot_rl.rewards.learned import FitConfig, LearnedProgress, SuccessClassifier
from robot_rl.rewards.metrics import kendall_tau, success_scores, voc
from robot_rl.robots import make_env
from robot_rl.schema import load_config
from robot_rl.sim.expert import NEAR_MISSES, NearMissExpert, ScriptedExpert

TASK = "pick_cube"
STEPS = 40
#: the near misses the classifier is judged (and trained) on: those the issue names, which look
#: most like success (a dropped cube soon looks like the start of an episode)
HARD = ("low_lift", "beside")
#: a view no model is trained on: the front camera 15 cm left and 10 cm up, turned 8° right and
#: 6° down, and a blue cube instead of the red one
UNSEEN_VIEW = ("robot.camera_offsets.front.shift=[0.0,-0.15,0.1]", "robot.camera_offsets.front.turn=[-8,-6,0]",
               "task.cube_rgba=[0.15,0.3,0.9,1]")
#: figure → (comparison, bound)
TARGETS = {"voc_success": (">=", 0.8), "voc_unseen_view": (">=", 0.7), "voc_failure": ("<=", -0.3),
           "classifier_f1_hard": (">=", 0.85), "classifier_f1": (">=", 0.9)}


@dataclass
class Episode:
    frames: dict[str, np.ndarray]  # camera → (T + 1, H, W, 3)
    success: np.ndarray  # (T + 1,) bool, the sim's
    progress: np.ndarray  # (T + 1,) the sim's privileged progress
    missed: np.ndarray  # (T + 1,) bool: a near miss has happened (near-miss episodes only)

    def until_success(self) -> dict[str, np.ndarray]:
        end = int(np.argmax(self.success)) + 1 if self.success.any() else len(self.success)
        return {name: images[:end] for name, images in self.frames.items()}


def pick_env(*overrides: str):
    return make_env(load_config([f"task={TASK}", "cameras=sim64", "task.terminate_on_success=false",
                                 f"task.max_steps={STEPS}", *overrides]))


def episodes(env, seeds, policy: str) -> list[Episode]:
    """``policy`` (expert, random or a near-miss kind) from each seed, ``STEPS`` steps."""
    out = []
    for seed in seeds:
        obs, info = env.reset(seed=int(seed))
        if policy in NEAR_MISSES:
            expert = NearMissExpert(env, policy, seed=int(seed))
        else:
            expert = ScriptedExpert(env, seed=int(seed))
        rng = np.random.default_rng(int(seed))
        frames, success, progress, missed = [obs], [False], [info["progress"]], [False]
        for _ in range(STEPS):
            action = random_action(env.action_space, rng) if policy == "random" else expert.act(obs)
            obs, _, terminated, truncated, info = env.step(action.astype(np.float32))
            frames.append(obs)
            success.append(bool(info["is_success"]))
            progress.append(info["progress"])
            missed.append(bool(getattr(expert, "missed", False)))
            if terminated or truncated:
                break
        out.append(Episode({name: np.stack([f[name] for f in frames]) for name in env.images}, np.array(success),
                           np.array(progress), np.array(missed)))
    return out


def collect(args: argparse.Namespace) -> dict[str, list[Episode]]:
    """Every episode the benchmark trains and judges on; seeds never shared between sets."""
    d, h, n = args.demos, args.held_out, args.near_misses
    env = pick_env()
    data = {"expert_train": episodes(env, range(d), "expert"),
            "random_train": episodes(env, range(20_000, 20_000 + max(1, d // 2)), "random"),
            "near_train": [e for i, kind in enumerate(HARD)
                           for e in episodes(env, range(40_000 + 1000 * i, 40_000 + 1000 * i + n), kind)],
            "expert_test": episodes(env, range(10_000, 10_000 + h), "expert"),
            "random_test": episodes(env, range(30_000, 30_000 + h), "random")}
    for i, kind in enumerate(NEAR_MISSES):
        data[f"{kind}_test"] = episodes(env, range(50_000 + 1000 * i, 50_000 + 1000 * i + h), kind)
    env.close()
    env = pick_env(*UNSEEN_VIEW)
    data["unseen_test"] = episodes(env, range(60_000, 60_000 + h), "expert")
    env.close()
    return data


def progress_figures(progress: LearnedProgress, data: dict[str, list[Episode]]) -> dict[str, float]:
    """VOC on successes (usual and unseen view) and on near-miss failures (beside the sim's
    progress's own VOC there), how often a near miss's frame reads as done, latency."""
    def vocs(eps, metric=voc):
        return [metric(progress.score(e.until_success(), TASK).progress) for e in eps if e.success.any()]

    figures = {"voc_success": np.nanmean(vocs(data["expert_test"])),
               "voc_unseen_view": np.nanmean(vocs(data["unseen_test"])),
               "kendall_success": np.nanmean(vocs(data["expert_test"], kendall_tau))}
    done = []
    for kind in NEAR_MISSES:
        name = "failure" if kind == "drop" else f"near_miss_{kind}"
        scored = [progress.score(e.frames, TASK) for e in data[f"{kind}_test"]]
        figures[f"voc_{name}"] = np.nanmean([voc(out.progress) for out in scored])
        figures[f"voc_{name}_sim"] = np.nanmean([voc(e.progress) for e in data[f"{kind}_test"]])
        done += [out.success_prob[e.missed] >= 0.5 for out, e in zip(scored, data[f"{kind}_test"], strict=True)]
    figures["progress_false_success_near_miss"] = np.mean(np.concatenate(done))
    latency = []
    for e in data["expert_test"]:
        frames = e.until_success()
        t0 = time.perf_counter()
        progress.score(frames, TASK)
        latency.append((time.perf_counter() - t0) * 1000 / len(next(iter(frames.values()))))
    figures["progress_ms_per_frame_p50"] = np.percentile(latency, 50)
    return {k: round(float(v), 3) for k, v in figures.items()}


def hard_frames(data: dict[str, list[Episode]]) -> dict[str, dict[str, np.ndarray]]:
    """The classifier's hard test set: success frames (positives), and per kind of near miss
    the frames once it has happened; ``one_step_before``: each success's last frame before it."""
    def stack(parts):
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    successes = [e for e in data["expert_test"] if e.success.any()]
    sets = {"success": stack([{n: f[e.success] for n, f in e.frames.items()} for e in successes])}
    for kind in HARD:
        misses = [{n: f[e.missed & ~e.success] for n, f in e.frames.items()} for e in data[f"{kind}_test"]]
        sets[kind] = stack(misses)
    before = [{n: f[int(np.argmax(e.success)) - 1][None] for n, f in e.frames.items()} for e in successes]
    sets["one_step_before"] = stack(before)
    return sets


def classifier_figures(classifier: SuccessClassifier, data: dict[str, list[Episode]]) -> dict[str, float]:
    """F1 (precision, recall) of success frames against the hard negatives, the rate at which
    each kind is taken for success, and the F1 and AUROC of the easy mix."""
    sets = hard_frames(data)
    probs = {kind: classifier.score(frames, TASK).success_prob for kind, frames in sets.items()}
    negatives = [k for k in sets if k != "success"]
    hard = success_scores(np.concatenate([probs["success"], *(probs[k] for k in negatives)]),
                          np.concatenate([np.ones(len(probs["success"]), bool),
                                          *(np.zeros(len(probs[k]), bool) for k in negatives)]))
    def scores(eps):
        return success_scores(np.concatenate([classifier.score(e.frames, TASK).success_prob for e in eps]),
                              np.concatenate([e.success for e in eps]))

    easy, unseen = scores(data["expert_test"] + data["random_test"]), scores(data["unseen_test"])
    figures = {"classifier_f1_hard": hard.f1, "classifier_precision_hard": hard.precision,
               "classifier_recall_hard": hard.recall, "classifier_auroc_hard": hard.auroc,
               "classifier_f1": easy.f1, "classifier_auroc": easy.auroc, "classifier_f1_unseen_view": unseen.f1,
               "classifier_threshold": classifier.threshold}
    figures |= {f"false_success_{k}": float(np.mean(probs[k] >= 0.5)) for k in negatives}
    figures |= {"hard_positive_frames": len(probs["success"]),
                "hard_negative_frames": sum(len(probs[k]) for k in negatives)}
    return {k: round(float(v), 3) if isinstance(v, float) else v for k, v in figures.items()}


def met(figure: float, target: tuple[str, float]) -> bool:
    op, bound = target
    return bool(figure >= bound if op == ">=" else figure <= bound)


def table_rows(s: dict) -> list[list]:
    def row(label, key, value=None):
        target = TARGETS.get(key)
        return [label, s[key] if value is None else value, f"{target[0]} {target[1]:g}" if target else "",
                met(s[key], target) if target else None]

    def pair(key):
        return f"{s[key]:.3f} / {s[f'{key}_sim']:.3f}"

    rates = " / ".join(f"{s[f'false_success_{k}']:.2f}" for k in (*HARD, "one_step_before"))
    return [
        row("learned_progress VOC, held-out successes", "voc_success"),
        row("VOC, successes from an unseen camera pose and cube colour", "voc_unseen_view"),
        row("  the same, trained without colour jitter", "voc_unseen_view_no_jitter"),
        row("VOC / the sim's progress VOC, cube let go (failure)", "voc_failure", pair("voc_failure")),
        row("VOC / the sim's, cube held 1 cm up", "voc_near_miss_low_lift", pair("voc_near_miss_low_lift")),
        row("VOC / the sim's, gripper closed beside the cube", "voc_near_miss_beside", pair("voc_near_miss_beside")),
        row("near-miss frames read as done", "progress_false_success_near_miss"),
        row("learned_progress Kendall τ, successes", "kendall_success"),
        row("learned_progress ms per frame (p50)", "progress_ms_per_frame_p50"),
        row("classifier F1, successes vs hard negatives", "classifier_f1_hard"),
        row("classifier precision / recall, hard", "classifier_precision_hard",
            f"{s['classifier_precision_hard']:.3f} / {s['classifier_recall_hard']:.3f}"),
        row("taken for success: 1 cm lift / closed beside / step before", "false_success_low_lift", rates),
        row("classifier F1, expert and random-policy frames", "classifier_f1"),
        row("classifier AUROC, hard / expert and random", "classifier_auroc",
            f"{s['classifier_auroc_hard']:.3f} / {s['classifier_auroc']:.3f}"),
        row("classifier F1, successes from the unseen view", "classifier_f1_unseen_view"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demos", type=int, default=20)
    parser.add_argument("--held-out", type=int, default=10, help="held-out episodes of each kind")
    parser.add_argument("--near-misses", type=int, default=0,
                        help="recorded near misses of each kind (1 cm lift, closed beside) the classifier trains on")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hue-jitter", type=float, default=180.0, help="training colour jitter, degrees (0: off)")
    parser.add_argument("--brightness-jitter", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute (not the benchmark)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object last")
    args = parser.parse_args()
    if args.quick:
        args.demos, args.held_out, args.near_misses, args.epochs = 3, 2, min(args.near_misses, 1), 2
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    data = collect(args)
    data_s = time.perf_counter() - started

    config = FitConfig(epochs=args.epochs, hue_jitter=args.hue_jitter, brightness_jitter=args.brightness_jitter)
    demos = [e.until_success() for e in data["expert_train"] if e.success.any()]
    failures = [e.frames for e in data["random_train"]]
    t0 = time.perf_counter()
    progress = LearnedProgress.train(demos, TASK, config, failures)
    progress_train_s = time.perf_counter() - t0
    plain = LearnedProgress.train(demos, TASK, FitConfig(epochs=args.epochs), failures)  # no colour jitter
    labelled = data["expert_train"] + data["random_train"] + data["near_train"]
    t0 = time.perf_counter()
    classifier, _ = SuccessClassifier.train([e.frames for e in labelled], [e.success for e in labelled], TASK, config)
    classifier_train_s = time.perf_counter() - t0

    summary = progress_figures(progress, data) | classifier_figures(classifier, data)
    summary["voc_unseen_view_no_jitter"] = round(float(np.nanmean(
        [voc(plain.score(e.until_success(), TASK).progress) for e in data["unseen_test"] if e.success.any()])), 3)
    summary |= {"demos": len(demos), "near_misses_trained": len(data["near_train"]),
                "held_out_successes": int(sum(e.success.any() for e in data["expert_test"])),
                "unseen_view_successes": int(sum(e.success.any() for e in data["unseen_test"])),
                "hue_jitter": args.hue_jitter, "brightness_jitter": args.brightness_jitter, "quick": args.quick,
                "data_s": round(data_s, 1), "progress_train_s": round(progress_train_s, 1),
                "classifier_train_s": round(classifier_train_s, 1), "total_s": round(time.perf_counter() - started, 1)}
    summary["targets_met"] = all(met(summary[k], t) for k, t in TARGETS.items())
    print_report(f"reward models on {TASK} from 64×64 pixels: {len(demos)} demos, {args.held_out} held-out episodes "
                 f"of each kind{' (--quick: a smoke run, not the benchmark)' if args.quick else ''}",
                 ["metric", "value", "target", "met"], table_rows(summary), summary, args.json)


if __name__ == "__main__":
    main()
