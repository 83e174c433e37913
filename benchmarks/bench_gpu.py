"""What only a GPU shows, measured on CUDA in one run of under 8 minutes (`make bench-gpu`).

    python benchmarks/bench_gpu.py [--json] [--quick] [--device cuda[:N]] [--out PATH]
                                   [--train-steps N] [--budget-s S] [--threads N]

Learner (learner_speed.py's functions; no actor in these loops), 128×128, batch 256:

- updates_per_s / updates_per_s_fp32: SAC updates/s on one fixed batch already on the GPU,
  bf16 autocast on (the default) / off. No sampling, no copy, no publication.
- updates_per_s_end_to_end / _fp32: a real Learner's update while updates are owed (replay
  filled through ingest, MixtureSampler + BatchPrefetcher with pinned memory, the copy to the
  GPU, the update, a weight publication every 50), bf16 on / off; no actor streams meanwhile.

Actor (no learning in these loops), 128×128:

- actor_inference_ms_p50/p99: SACAgent.act alone on the GPU, 200 calls after a warm-up.
- actor_period_error_ms_p99_128px, actor_loop_inference_ms_p99_128px: the real Actor at 10 Hz
  on the simulated reach task with the SACAgent acting on the GPU (as in a one-process run), 100 steps.
- actor_steps_per_s_128px: the same actor unpaced (act + simulate + render), 200 steps.

Training: pick_cube from pixels (two 128×128 cameras) in one process, lockstep, learner and
acting policy on the GPU, 20 scripted demos, ``--train-steps`` env steps (default 3,000) at
utd 1, the deterministic policy evaluated at the end on 20 held-out episodes: train_eval_success,
train_wall_s (demos, training and evaluation), train_env_steps_per_s. The steps are cut (to
a multiple of 500, at least 500) when the speeds measured before say they would not fit in
``--budget-s`` (default 450 s from the start); train_env_steps says how many ran.

The table goes to stdout; the figures, with the machine (GPU, torch, CUDA, date), to
``--out`` (default benchmarks/results/gpu.json on CUDA; not written on another device unless
asked), and with ``--json`` also as the last stdout line. A phase that fails is reported in
``errors`` and the others still run; the exit status is then 1. Without CUDA it exits with
one line and status 2. ``--device cpu --quick`` runs the same code with tiny sizes on a CPU
(a smoke test of this script, not a measurement).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import learner_speed as ls
import numpy as np
import torch
from published import publish_to

from robot_rl.report import format_table, print_report
from robot_rl.rl.actor import Actor
from robot_rl.rl.assembly import make_agent
from robot_rl.rl.train import train_in_process
from robot_rl.robots import make_env
from robot_rl.schema import load_config

RESULTS = Path(__file__).resolve().parent / "results" / "gpu.json"
HEADER = ["metric", "value", "target", "met"]


def settings(quick: bool) -> dict[str, Any]:
    if quick:  # a smoke test of the code path, not a measurement
        return {"size": 64, "batch": 32, "updates": 3, "warmup": 1, "budget_s": 2.0, "replay_steps": 600,
                "calls": 20, "actor_steps": 20, "unpaced_steps": 20, "demos": 2, "eval_episodes": 1,
                "train": ["train.random_steps=20", "learner.warmup_transitions=32", "learner.batch_size=32",
                          "task.max_steps=20"]}
    return {"size": 128, "batch": 256, "updates": 300, "warmup": 10, "budget_s": 20.0, "replay_steps": 2000,
            "calls": 200, "actor_steps": 100, "unpaced_steps": 200, "demos": 20, "eval_episodes": 20, "train": []}


def cuda_device(name: str) -> torch.device:
    """The device asked for; for CUDA, one that exists, else one line on stderr and exit status 2."""
    device = torch.device(name)
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        problem = (f"no CUDA here (torch {torch.__version__}, built for CUDA {torch.version.cuda}); run it on a "
                   "machine with an NVIDIA GPU, or smoke-test it with --device cpu --quick")
    elif (device.index or 0) >= torch.cuda.device_count():
        problem = f"no {name} here ({torch.cuda.device_count()} CUDA devices)"
    else:
        return torch.device("cuda", device.index or 0)
    print(f"bench_gpu: {problem}", file=sys.stderr)
    sys.exit(2)


def machine(device: torch.device) -> dict[str, Any]:
    gpu = device.type == "cuda"
    return {"device": str(device), "gpu": torch.cuda.get_device_name(device) if gpu else None,
            "gpu_memory_gb": round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1) if gpu else None,
            "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "python": platform.python_version(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "mujoco_gl": os.environ.get("MUJOCO_GL"),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}


def fixed_batch_phase(device: torch.device, s: dict[str, Any]) -> dict[str, float]:
    timed = (s["size"], device, s["batch"], s["updates"], s["warmup"], s["budget_s"])
    return {"updates_per_s": ls.updates_per_second(*timed, mixed_precision=True),
            "updates_per_s_fp32": ls.updates_per_second(*timed, mixed_precision=False)}


def end_to_end_phase(device: torch.device, s: dict[str, Any]) -> dict[str, float]:
    timed = (s["size"], device, s["batch"], s["updates"], s["warmup"], s["budget_s"], s["replay_steps"])
    return {"updates_per_s_end_to_end": ls.end_to_end_updates_per_second(*timed),
            "updates_per_s_end_to_end_fp32": ls.end_to_end_updates_per_second(*timed, ["agent.mixed_precision=false"])}


def unpaced_steps_per_s(device: torch.device, size: int, steps: int) -> float:
    """Steps/s of the real Actor, unpaced, with the train config's SACAgent acting on ``device``."""
    cfg = load_config(["task=reach", f"cameras={ls.CAMERA_CONFIG[size]}"], name="train")
    env = make_env(cfg)
    try:
        actor = Actor(env, make_agent(cfg, env, device))
        actor.run(max_steps=10)  # warm-up
        start, first = time.perf_counter(), actor.total_steps
        actor.run(should_stop=lambda: actor.total_steps - first >= steps)
        return (actor.total_steps - first) / (time.perf_counter() - start)
    finally:
        env.close()


def inference_phase(device: torch.device, s: dict[str, Any]) -> dict[str, float]:
    inference = ls.inference_ms(device, s["calls"], size=s["size"])
    return {"actor_inference_ms_p50": float(np.percentile(inference, 50)),
            "actor_inference_ms_p99": float(np.percentile(inference, 99))}


def actor_loop_phase(device: torch.device, s: dict[str, Any]) -> dict[str, float]:
    size = s["size"]
    timing = ls.actor_timing(s["actor_steps"], size, "sac", device)
    return {f"actor_period_error_ms_p99_{size}px": timing.period_error_ms_p99,
            f"actor_loop_inference_ms_p99_{size}px": timing.inference_ms_p99,
            f"actor_missed_deadlines_{size}px": timing.missed_deadlines}


def affordable_steps(wanted: int, seconds_left: float, figures: dict[str, Any], s: dict[str, Any]) -> int:
    """``wanted`` env steps, or fewer (a multiple of 500, at least 500) when the lockstep speed
    the earlier phases measured says they would not fit in ``seconds_left``."""
    updates = figures.get("updates_per_s_end_to_end") or 10.0  # guesses where a phase failed
    sim = figures.get(f"actor_steps_per_s_{s['size']}px") or 20.0
    per_step = 1 / sim + 1 / updates  # utd 1: one update per env step
    fixed = 60 + (s["demos"] * 60 + s["eval_episodes"] * 100) / sim  # start, demos, evaluation, checkpoint
    fits = int(0.8 * (seconds_left - fixed) / per_step)
    return wanted if fits >= wanted or wanted <= 500 else max(500, fits // 500 * 500)


def train_phase(device: torch.device, s: dict[str, Any], steps: int) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix="bench_gpu_train_"))
    overrides = ["task=pick_cube", f"cameras={ls.CAMERA_CONFIG[s['size']]}", f"learner.device={device}",
                 "train.processes=1", f"train.env_steps={steps}", f"train.eval_every={steps}",
                 f"train.eval_episodes={s['eval_episodes']}", f"train.demos={s['demos']}", "logging.wandb=disabled",
                 f"run_dir={run_dir}", *s["train"]]
    try:
        report = train_in_process(load_config(overrides, name="train"), run_dir, progress_bar=False)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    return {"train_env_steps": report.env_steps, "train_updates": report.updates, "train_demos": s["demos"],
            "train_eval_episodes": s["eval_episodes"], "train_eval_success": report.final_success,
            "train_wall_s": round(report.wall_s, 1), "train_env_steps_per_s": report.env_steps / report.wall_s,
            "train_loop_inference_ms_p99": report.timing.inference_ms_p99 if report.timing else None}


def run_phase(name: str, fn: Callable[[], dict[str, Any]], figures: dict[str, Any], errors: dict[str, str],
              phase_s: dict[str, float]) -> None:
    """Run one phase into ``figures``; a failure goes to ``errors`` (traceback on stderr) and the run goes on."""
    start = time.perf_counter()
    try:
        figures.update(fn())
    except Exception as exc:  # one phase's failure must not lose the others' figures
        traceback.print_exc()
        errors[name] = f"{type(exc).__name__}: {exc}"
    phase_s[name] = round(time.perf_counter() - start, 1)
    print(f"bench_gpu: {name} {'failed' if name in errors else 'done'} in {phase_s[name]:.0f} s", file=sys.stderr)


def value(figures: dict[str, Any], key: str) -> Any:
    return figures.get(key, "n/a")


def ratio(figures: dict[str, Any], a: str, b: str) -> Any:
    return figures[a] / figures[b] if figures.get(a) and figures.get(b) else "n/a"


def within(figures: dict[str, Any], key: str, bound: float) -> Any:
    return figures[key] <= bound if isinstance(figures.get(key), float) else None


def learner_rows(f: dict[str, Any], size: int) -> list[list[Any]]:
    return [[f"updates_per_s: fixed batch on the device, {size}px, bf16", value(f, "updates_per_s"), "", None],
            [f"updates_per_s_fp32: fixed batch on the device, {size}px", value(f, "updates_per_s_fp32"), "", None],
            ["bf16 ÷ fp32, fixed batch", ratio(f, "updates_per_s", "updates_per_s_fp32"), "", None],
            ["updates_per_s_end_to_end: Learner.update, bf16", value(f, "updates_per_s_end_to_end"), "", None],
            ["updates_per_s_end_to_end_fp32: Learner.update", value(f, "updates_per_s_end_to_end_fp32"), "", None],
            ["end to end ÷ fixed batch, bf16", ratio(f, "updates_per_s_end_to_end", "updates_per_s"), "", None]]


def actor_rows(f: dict[str, Any], size: int) -> list[list[Any]]:
    period = f"actor_period_error_ms_p99_{size}px"
    return [["actor_inference_ms_p50: SACAgent.act alone", value(f, "actor_inference_ms_p50"), "", None],
            ["actor_inference_ms_p99: SACAgent.act alone", value(f, "actor_inference_ms_p99"),
             f"<= {ls.INFERENCE_TARGET_MS:g}", within(f, "actor_inference_ms_p99", ls.INFERENCE_TARGET_MS)],
            [f"{period}: 10 Hz, SACAgent acting", value(f, period), f"<= {ls.PERIOD_ERROR_TARGET_MS:g}",
             within(f, period, ls.PERIOD_ERROR_TARGET_MS)],
            [f"actor_loop_inference_ms_p99_{size}px", value(f, f"actor_loop_inference_ms_p99_{size}px"), "", None],
            [f"actor_missed_deadlines_{size}px", value(f, f"actor_missed_deadlines_{size}px"), "", None],
            [f"actor_steps_per_s_{size}px: unpaced, act + simulate", value(f, f"actor_steps_per_s_{size}px"), "",
             None]]


def train_rows(f: dict[str, Any]) -> list[list[Any]]:
    return [[key, value(f, key), "", None] for key in
            ("train_env_steps", "train_updates", "train_demos", "train_eval_episodes", "train_eval_success",
             "train_wall_s", "train_env_steps_per_s", "train_loop_inference_ms_p99")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the result JSON as the last line")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the script")
    parser.add_argument("--device", default="cuda", help="cuda[:N] (default cuda), or cpu for a smoke test")
    parser.add_argument("--out", default=None, help=f"result JSON (default {RESULTS} on CUDA)")
    parser.add_argument("--train-steps", type=int, default=None, help="pick_cube env steps (default 3000, quick 60)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--budget-s", type=float, default=450.0, help="seconds the whole run should fit in")
    args = parser.parse_args()
    device = cuda_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    s = settings(args.quick)
    s["train"] += [f"train.threads={args.threads}"] if args.threads else []
    wanted = args.train_steps or (60 if args.quick else 3000)

    figures: dict[str, Any] = {}
    errors: dict[str, str] = {}
    phase_s: dict[str, float] = {}
    phases = {"fixed_batch": fixed_batch_phase, "end_to_end": end_to_end_phase, "inference": inference_phase,
              "actor_loop": actor_loop_phase,
              "actor_unpaced": lambda d, s: {f"actor_steps_per_s_{s['size']}px": unpaced_steps_per_s(
                  d, s["size"], s["unpaced_steps"])}}
    for name, phase in phases.items():
        run_phase(name, lambda phase=phase: phase(device, s), figures, errors, phase_s)
    steps = affordable_steps(wanted, args.budget_s - (time.perf_counter() - started), figures, s)
    run_phase("train", lambda: train_phase(device, s, steps), figures, errors, phase_s)
    wall = time.perf_counter() - started

    size = s["size"]
    checks = [within(figures, "actor_inference_ms_p99", ls.INFERENCE_TARGET_MS),
              within(figures, f"actor_period_error_ms_p99_{size}px", ls.PERIOD_ERROR_TARGET_MS)]
    result = {**{k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()},
              "targets_met": all(c is True for c in checks), "train_env_steps_wanted": wanted,
              "image_size": size, "batch_size": s["batch"], "quick": args.quick, "machine": machine(device),
              "errors": errors, "phase_s": phase_s, "wall_s": round(wall, 1)}
    out = Path(args.out) if args.out else (RESULTS if device.type == "cuda" else None)
    gpu = result["machine"]["gpu"] or str(device)
    if out is not None:
        rows = [*learner_rows(figures, size), *actor_rows(figures, size), *train_rows(figures)]
        publish_to(out, f"bench_gpu: {size}×{size}, batch {s['batch']}, on {gpu}; pick_cube from pixels with "
                   f"{s['demos']} demos, eval at the end", HEADER, rows, result,
                   ", ".join(f"{k} {v}" for k, v in result["machine"].items()))
    print(f"bench_gpu on {gpu}, torch {torch.__version__}{' (quick: a smoke test)' if args.quick else ''}; "
          f"{wall:.0f} s; {'errors in ' + ', '.join(errors) if errors else 'no errors'}")
    print(f"\nlearner: {size}×{size}, batch {s['batch']}; no actor in these loops")
    print(format_table(HEADER, learner_rows(figures, size)))
    print(f"\nactor: {size}×{size}, the policy on {device}; no learning in these loops")
    print(format_table(HEADER, actor_rows(figures, size)))
    print()
    print_report(f"pick_cube from pixels ({size}×{size}), one process, learner on {device}, {s['demos']} demos, "
                 f"eval at the end" + (f"; written to {out}" if out else ""), HEADER, train_rows(figures), result,
                 args.json)
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
