"""Offline training from demos, then online fine-tuning, against online training from scratch.

    python benchmarks/offline.py [--demos 50] [--offline-updates 4000] [--env-steps 10000] [--json] [key=value ...]

1. Records ``--demos`` scripted-expert pick_cube episodes (64×64 pixels) into an EpisodeStore.
2. ``offline``: trains on them alone (``robot-rl offline``, Cal-QL by default) and evaluates
   the deterministic policy in sim on held-out seeds: ``offline_success``.
3. ``finetune``: online training from that checkpoint with the demos as the demo buffer
   (``robot-rl train init=... data=...``), until eval success reaches 90 % or ``--env-steps``.
4. ``scratch``: the same online training, same demos and seed, from freshly initialised networks.

Both online runs are in one process, in lockstep (``train.processes=1``), so the result
does not depend on how two processes share the CPU. Prints a table, and with ``--json`` a
last line holding ``offline_success``, ``finetune_success``, ``finetune_steps_to_90`` and
``scratch_steps_to_90`` (null: 90 % was not reached within ``--env-steps``).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

from robot_rl.config import load_config
from robot_rl.report import print_report
from robot_rl.rl.offline import train_offline
from robot_rl.rl.train import record_demos, train_in_process


def steps_to(curve: list[tuple[int, float]], level: float) -> int | None:
    return next((steps for steps, success in curve if success >= level), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="pick_cube")
    parser.add_argument("--demos", type=int, default=50)
    parser.add_argument("--method", default="calql", choices=["calql", "bc"])
    parser.add_argument("--offline-updates", type=int, default=4000)
    parser.add_argument("--env-steps", type=int, default=10_000, help="online budget of each of the two runs")
    parser.add_argument("--eval-every", type=int, default=500, help="env steps between online evaluations")
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--skip-scratch", action="store_true", help="only the offline and fine-tuning runs")
    parser.add_argument("--run-dir", default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("overrides", nargs="*", help="extra config overrides (key=value) for every phase")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")

    root = Path(args.run_dir or tempfile.mkdtemp(prefix="offline_bench_"))
    root.mkdir(parents=True, exist_ok=True)
    demos = root / "demos.zarr"
    common = [f"task={args.task}", "logging.wandb=disabled", *args.overrides]
    record_demos(load_config(common, name="train"), demos, args.demos)

    started = time.perf_counter()
    offline_dir = root / "offline"
    offline_dir.mkdir(exist_ok=True)
    offline_cfg = load_config([*common, f"data={demos}", f"offline.method={args.method}",
                               f"offline.updates={args.offline_updates}", f"offline.eval_every={args.offline_updates}",
                               f"offline.eval_episodes={args.eval_episodes}", f"run_dir={offline_dir}"], name="train")
    offline = train_offline(offline_cfg, offline_dir, progress_bar=not args.json)
    offline_wall = time.perf_counter() - started

    def online(name: str, extra: list[str]):
        run_dir = root / name
        cfg = load_config([*common, f"data={demos}", "train.demos=0", "train.processes=1",
                           f"train.env_steps={args.env_steps}", f"train.eval_every={args.eval_every}",
                           f"train.eval_episodes={args.eval_episodes}", "train.stop_at=0.9", f"run_dir={run_dir}",
                           *extra], name="train")
        return train_in_process(cfg, run_dir, progress_bar=not args.json)

    finetune = online("finetune", [f"init={offline_dir}"])
    scratch = None if args.skip_scratch else online("scratch", [])

    rows = [["offline", f"{args.offline_updates} updates", 0, "", f"{offline.final_success:.0%}",
             round(offline_wall)]]
    for name, report in (("finetune", finetune), ("scratch", scratch)):
        if report is not None:
            reached = steps_to(report.curve, 0.9)
            rows.append([name, "online", report.env_steps, reached if reached is not None else f"> {args.env_steps}",
                         f"{report.final_success:.0%}", round(report.wall_s)])
    summary = {
        "task": args.task, "demos": args.demos, "method": args.method, "offline_updates": args.offline_updates,
        "offline_success": offline.final_success,
        "finetune_success": finetune.final_success, "finetune_steps_to_90": steps_to(finetune.curve, 0.9),
        "scratch_success": scratch.final_success if scratch else None,
        "scratch_steps_to_90": steps_to(scratch.curve, 0.9) if scratch else None,
        "finetune_curve": finetune.curve, "scratch_curve": scratch.curve if scratch else None,
        "offline_wall_s": round(offline_wall, 1), "finetune_wall_s": round(finetune.wall_s, 1),
        "scratch_wall_s": round(scratch.wall_s, 1) if scratch else None, "overrides": args.overrides,
    }
    print_report(f"offline: {args.task}, {args.demos} expert demos, {args.method} then fine-tuning vs scratch "
                 f"({root})", ["phase", "training", "env steps", "steps to 90 %", "eval success", "wall s"],
                 rows, summary, args.json)


if __name__ == "__main__":
    main()
