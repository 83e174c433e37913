"""What a (simulated) operator is worth: pick_cube from pixels with and without the
simulated operator, same seeds and budget, no scripted demos.

    python benchmarks/hil_effect.py [--env-steps 8000] [--eval-every 500] [--json] [key=value ...]

Reports env steps to reach 80 % eval success for each run (None: not within the budget;
each run stops once it gets there),
final success, and the operator's intervention rate over time.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from robot_rl.logs import setup_logging
from robot_rl.report import print_report, steps_to
from robot_rl.rl.assembly import TrainReport
from robot_rl.rl.train import train_in_process
from robot_rl.schema import load_config


def run(teleop: str, args: argparse.Namespace, root: Path) -> TrainReport:
    overrides = ["task=pick_cube", "task.reward=dense", f"teleop={teleop}", f"train.env_steps={args.env_steps}",
                 f"train.eval_every={args.eval_every}", f"train.eval_episodes={args.eval_episodes}",
                 "train.processes=1", "train.stop_at=0.8", "logging.wandb=disabled", f"seed={args.seed}",
                 *args.overrides]
    cfg = load_config(overrides, name="train")
    return train_in_process(cfg, root / teleop, progress_bar=not args.json)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-steps", type=int, default=8000)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    setup_logging()
    root = Path(tempfile.mkdtemp(prefix="hil_effect_"))
    with_op, without = run("sim_expert", args, root), run("none", args, root)

    # each run stops once it reaches 80 %, so the curves may differ in length
    with_curve, without_curve = dict(with_op.curve), dict(without.curve)
    rates = dict(with_op.intervention_curve)
    rows = [[steps, with_curve.get(steps), without_curve.get(steps), rates.get(steps)]
            for steps in sorted(with_curve.keys() | without_curve.keys())]
    to_80_with, to_80_without = steps_to(with_op.curve, 0.8), steps_to(without.curve, 0.8)
    if to_80_with is not None:
        # a run that never got there counts as the whole budget: the cut is then a lower bound
        cut = 1 - to_80_with / (to_80_without if to_80_without is not None else args.env_steps)
    else:
        cut = None
    summary = {"steps_to_80_with": to_80_with, "steps_to_80_without": to_80_without,
               "final_success_with": with_op.final_success, "final_success_without": without.final_success,
               "steps_cut": cut, "steps_cut_is_lower_bound": to_80_without is None,
               "intervention_rate": with_op.intervention_curve, "env_steps": args.env_steps}
    print_report(f"hil_effect: pick_cube from pixels, {args.env_steps} steps, with/without the simulated operator",
                 ["env steps", "success with", "success without", "intervention rate"], rows, summary, args.json)


if __name__ == "__main__":
    main()
