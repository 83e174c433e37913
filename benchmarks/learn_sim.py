"""Learning from pixels on the simulated arm with the default training config.

    python benchmarks/learn_sim.py --task reach [--env-steps 5000] [--demos 0] [--json] [key=value ...]

Trains (actor and learner in one process, lockstep, so the result does not depend on how
two processes share the CPU), evaluates the deterministic policy every ``--eval-every``
steps on held-out seeds, and reports env_steps, wall_s, eval_success and the curve.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

from robot_rl.logs import setup_logging
from robot_rl.report import print_report
from robot_rl.rl.train import train_in_process
from robot_rl.schema import load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="reach")
    parser.add_argument("--env-steps", type=int, default=5000)
    parser.add_argument("--demos", type=int, default=0, help="scripted-expert demos for the demo buffer")
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--run-dir", default=None, help="keep the run here (default: a temporary folder)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("overrides", nargs="*", help="extra config overrides (key=value)")
    args = parser.parse_args()
    setup_logging()

    run_dir = Path(args.run_dir or tempfile.mkdtemp(prefix="learn_sim_"))
    overrides = [f"task={args.task}", f"train.env_steps={args.env_steps}", f"train.demos={args.demos}",
                 f"train.eval_every={args.eval_every}", f"train.eval_episodes={args.eval_episodes}",
                 "train.processes=1", "logging.wandb=disabled", f"run_dir={run_dir}", *args.overrides]
    cfg = load_config(overrides, name="train")
    report = train_in_process(cfg, run_dir, progress_bar=not args.json)
    rows = [[steps, success] for steps, success in report.curve]
    summary = {"task": args.task, "env_steps": report.env_steps, "wall_s": round(report.wall_s, 1),
               "eval_success": report.final_success, "updates": report.updates, "demos": args.demos,
               "curve": report.curve, "overrides": args.overrides}
    print_report(f"learn_sim: {args.task} from pixels, {args.demos} demos, {report.updates} updates, "
                 f"{report.wall_s:.0f} s ({run_dir})", ["env steps", "eval success"], rows, summary, args.json)


if __name__ == "__main__":
    main()
