"""What a (simulated) operator is worth, apart from the expert data it brings.

    python benchmarks/hil_effect.py [--seeds 0 1 2] [--env-steps 4000] [--eval-every 250] [--workers 1]
                                    [--quick] [--json] [key=value ...]

pick_cube from pixels under the task's own sparse reward (1 on success, else 0), three arms on
the same env-step budget and the same seeds:

- ``no_operator``: SAC from scratch, no demos, nobody intervenes;
- ``operator``: the simulated operator (``teleop=sim_expert``) takes over when the policy is
  stuck; its steps go to the demo buffer too (RLPD, as with a person at a SpaceMouse);
- ``same_expert_steps``: nobody intervenes, but before training the demo buffer gets
  scripted-expert demos holding as many steps as the operator arm's operator gave in the
  run with the same seed (whole episodes, the last one finishing past that count).

So ``operator`` against ``no_operator`` is what a user sees, and ``operator`` against
``same_expert_steps`` separates the effect of intervening from that of more expert data.

The operator's takeover rule is privileged: it watches the sim's ground-truth task progress
(a person at the robot sees the scene; the rule and budget are printed with the table).
Each run evaluates the deterministic policy every ``--eval-every`` env steps on held-out
seeds and stops once it reaches 80 %; steps to 80 % of a run that never got there count as
its whole budget in the mean (and the arm's ``reached`` says how many did).

Conditions, to fit 3 seeds × 3 arms on 2 CPU cores: two 32×32 cameras (the CPU default is
64×64), actor and learner in one process in lockstep (``train.processes=1``: the result does
not depend on how the CPU is shared), one torch thread per run. Each finished run's result
is saved in ``--out`` (one JSON file per arm and seed) and reused, so the benchmark resumes
where it stopped; an unfinished run starts again. ``--quick``: one seed, 300 steps, a
smoke run of the code path (no figure). With ``--json`` the last line holds, per arm,
``steps_to_80_mean``, ``steps_to_80_std``, ``reached`` and ``seeds``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
from published import report

from robot_rl.logs import setup_logging
from robot_rl.report import steps_to
from robot_rl.rl.assembly import record_demos
from robot_rl.rl.train import train_in_process
from robot_rl.schema import load_config

ARMS = ("no_operator", "operator", "same_expert_steps")
LEVEL = 0.8
PIXELS = [f"cameras.{c}.{k}=[32,32]" for c in ("front", "wrist") for k in ("resolution", "size")]
DEFAULT_OUT = Path(__file__).parent / "results" / "hil_effect"


def overrides(args: argparse.Namespace, arm: str, seed: int) -> list[str]:
    return ["task=pick_cube", "task.reward=sparse", *PIXELS, f"teleop={'sim_expert' if arm == 'operator' else 'none'}",
            f"train.env_steps={args.env_steps}", f"train.eval_every={args.eval_every}",
            f"train.eval_episodes={args.eval_episodes}", "train.processes=1", "train.threads=1",
            f"train.stop_at={LEVEL}", "logging.wandb=disabled", f"seed={seed}", *args.overrides]


def run_arm(args: argparse.Namespace, arm: str, seed: int, expert_steps: int) -> dict:
    """One training run; its result (also written to ``--out``)."""
    setup_logging()
    run_dir = Path(args.work_dir) / f"{arm}_seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)  # an unfinished run starts again
    run_dir.mkdir(parents=True)
    extra = []
    if arm == "same_expert_steps" and expert_steps > 0:
        demos = record_demos(load_config(overrides(args, arm, seed), name="train"), run_dir / "demos.zarr", 0,
                             steps=expert_steps)
        extra = [f"data={demos}"]
    cfg = load_config([*overrides(args, arm, seed), *extra], name="train")
    trained = train_in_process(cfg, run_dir, progress_bar=False)
    result = {"arm": arm, "seed": seed, "steps_to_80": steps_to(trained.curve, LEVEL), "env_steps": trained.env_steps,
              "final_success": trained.final_success, "curve": trained.curve,
              "intervention_curve": trained.intervention_curve, "operator_steps": trained.intervention_steps,
              "demo_steps": expert_steps if arm == "same_expert_steps" else 0, "wall_s": round(trained.wall_s, 1),
              "overrides": overrides(args, arm, seed)}
    if not args.quick:
        result_file(args, arm, seed).write_text(json.dumps(result))
    return result


def result_file(args: argparse.Namespace, arm: str, seed: int) -> Path:
    return Path(args.out) / f"{arm}_seed{seed}.json"


def saved(args: argparse.Namespace, arm: str, seed: int) -> dict | None:
    """A finished run's result, if it was made with this budget and these overrides."""
    path = result_file(args, arm, seed)
    if args.quick or not path.exists():
        return None
    result = json.loads(path.read_text())
    return result if result["overrides"] == overrides(args, arm, seed) else None


def run_all(args: argparse.Namespace) -> dict[tuple[str, int], dict]:
    """Every arm and seed, reusing saved runs. ``same_expert_steps`` needs the operator steps of
    its seed's operator run: it is queued as soon as that run is done, and the operator runs
    go first, so the last of them is not left waiting at the end."""
    results = {(arm, seed): r for arm in ARMS for seed in args.seeds if (r := saved(args, arm, seed))}
    skipped = {(arm, seed) for arm in ARMS if arm not in args.arms for seed in args.seeds}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=context) as pool:
        pending: dict = {}

        def submit(arm: str, seed: int) -> None:
            if (arm, seed) in skipped:
                return
            steps = results["operator", seed]["operator_steps"] if arm == "same_expert_steps" else 0
            pending[pool.submit(run_arm, args, arm, seed, steps)] = (arm, seed)

        for seed in args.seeds:
            if ("operator", seed) not in results:
                submit("operator", seed)
            elif ("same_expert_steps", seed) not in results:
                submit("same_expert_steps", seed)
        for seed in args.seeds:
            if ("no_operator", seed) not in results:
                submit("no_operator", seed)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                arm, seed = pending.pop(future)
                results[arm, seed] = future.result()
                if arm == "operator" and ("same_expert_steps", seed) not in results:
                    submit("same_expert_steps", seed)
    return results


def summarise(args: argparse.Namespace, results: dict[tuple[str, int], dict]) -> dict:
    summary: dict = {"task": "pick_cube", "reward": "sparse", "pixels": 32, "env_steps": args.env_steps,
                     "eval_every": args.eval_every, "eval_episodes": args.eval_episodes, "level": LEVEL}
    for arm in ARMS:
        runs = [results[arm, seed] for seed in args.seeds]
        steps = [r["steps_to_80"] if r["steps_to_80"] is not None else args.env_steps for r in runs]
        summary[arm] = {"steps_to_80_mean": float(np.mean(steps)), "steps_to_80_std": float(np.std(steps)),
                        "reached": sum(r["steps_to_80"] is not None for r in runs), "seeds": len(runs),
                        "final_success_mean": float(np.mean([r["final_success"] for r in runs])),
                        "operator_steps_mean": float(np.mean([r["operator_steps"] for r in runs])),
                        "demo_steps_mean": float(np.mean([r["demo_steps"] for r in runs])),
                        "steps_to_80": [r["steps_to_80"] for r in runs]}
    base, op, same = (summary[arm]["steps_to_80_mean"] for arm in ARMS)
    summary["operator_cut_vs_no_operator"] = 1 - op / base
    summary["operator_cut_vs_same_expert_steps"] = 1 - op / same
    summary["target_operator_cut"] = 0.25
    summary["target_met"] = summary["operator_cut_vs_no_operator"] >= 0.25
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--env-steps", type=int, default=4000)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1, help="runs at once, each in its own process")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS),
                        help="run only these arms (the table needs every arm's runs, saved or run here)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="finished runs' results (resume from here)")
    parser.add_argument("--work-dir", default=None, help="the runs' folders (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="one seed, 300 steps: the code path only")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("overrides", nargs="*", help="extra config overrides (key=value) for every run")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.env_steps, args.eval_every, args.eval_episodes = [0], 300, 150, 2
        args.overrides = ["train.random_steps=100", "learner.warmup_transitions=100", "learner.batch_size=32",
                          *args.overrides]
    args.work_dir = args.work_dir or tempfile.mkdtemp(prefix="hil_effect_")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    setup_logging()
    results = run_all(args)
    missing = [f"{arm} seed {seed}" for arm in ARMS for seed in args.seeds if (arm, seed) not in results]
    if missing:
        raise SystemExit(f"hil_effect: no result yet for {', '.join(missing)}; run them (saved runs in {args.out} "
                         "are reused)")
    summary = summarise(args, results)
    rows = [[arm, f"{s['steps_to_80_mean']:.0f} ± {s['steps_to_80_std']:.0f}", f"{s['reached']}/{s['seeds']}",
             s["final_success_mean"], s["operator_steps_mean"], s["demo_steps_mean"]]
            for arm, s in ((arm, summary[arm]) for arm in ARMS)]
    operator = operator_rule()
    print(f"operator (teleop=sim_expert, privileged: watches ground-truth progress): {operator}")
    report("hil_effect", f"hil_effect: pick_cube from 32×32 pixels, sparse reward, {len(args.seeds)} seed(s), "
                 f"{args.env_steps} env steps, eval every {args.eval_every} ({args.eval_episodes} episodes); "
                 f"operator cut {summary['operator_cut_vs_no_operator']:.0%} vs no operator (target ≥ 25 %), "
                 f"{summary['operator_cut_vs_same_expert_steps']:.0%} vs the same expert steps as demos",
                 ["arm", "steps to 80 %", "reached", "final success", "operator steps", "demo steps"], rows,
                 {**summary, "operator_rule": operator}, args.json, publish=not args.quick)


def operator_rule() -> dict:
    """The simulated operator's takeover rule and budget, as configured."""
    teleop = load_config(["teleop=sim_expert"], name="train").teleop
    keys = ("stuck_steps", "guide_steps", "budget_start", "budget_end", "decay_episodes")
    return {k: teleop[k] for k in keys}


if __name__ == "__main__":
    main()
