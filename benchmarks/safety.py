"""Safety chain latency, and what random and adversarial policies get past it on the sim.

    python benchmarks/safety.py [--json] [--commands N] [--steps N]

chain_p50_us / chain_p99_us: time of one ``SafetyChain.apply`` (filter, commit, count) of
the default chain for the simulated Panda, over N commands drawn against random states
(positions in and around the box, any orientation, joints near and past their limits,
contact forces, fast joints) and mixing small moves, far targets and NaN/inf/huge
values. random_violations / adversarial_violations: steps of a random policy and of one
that always pushes out of the box and down into the table (pick_cube, state-only) with
the end effector outside the box by more than the tracking tolerance or a gripper geom
inside the table; the sim's ground truth, not the chain's word. The measured worst
excess and penetration are printed too.

Run it on an otherwise idle machine: with both cores of a 2-core box busy (say, a training
run), the latency figures come out about 2.5× higher.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

from robot_rl.drivers.base import ArmState, GripperState
from robot_rl.report import print_report
from robot_rl.robots import make_env
from robot_rl.safety import Command, RobotState, default_chain, load_limits
from robot_rl.safety.rotations import rpy_to_quat
from robot_rl.schema import load_config
from robot_rl.sim.audit import adversarial_policy, random_policy, run_policy
from robot_rl.sim.simulation import ARM_JOINTS

PERIOD = 0.1


def random_scenes(n: int, rng: np.random.Generator) -> list[tuple[Command, RobotState]]:
    limits = load_limits("sim_panda", ARM_JOINTS)
    lower = np.array([j.lower for j in limits.joints.limits.values()])
    upper = np.array([j.upper for j in limits.joints.limits.values()])
    scenes = []
    for _ in range(n):
        pos = rng.uniform([0.15, -0.5, -0.05], [0.85, 0.5, 0.5])
        if rng.random() < 0.7:
            quat = rpy_to_quat(math.pi + rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4), rng.uniform(-2, 2))
        else:
            q = rng.normal(size=4)
            quat = tuple(q / np.linalg.norm(q))
        wrench = rng.normal(0, 40 if rng.random() < 0.2 else 3, 6)
        dq = rng.normal(0, 0.2 if rng.random() < 0.9 else 2.0, 7)
        arm = ArmState(rng.uniform(lower - 0.05, upper + 0.05), dq, np.array([*pos, *quat]), wrench, 0.0)
        state = RobotState(arm, GripperState(float(rng.uniform(0, 0.08)), 0.0))
        kind = rng.random()
        if kind < 0.05:  # NaN, inf, huge
            pose = rng.choice([np.nan, np.inf, -np.inf, 1e300, 0.3], size=7)
        else:
            spread = 0.02 if kind < 0.6 else 0.5
            target_quat = np.array(quat) + rng.normal(0, 0.05 if kind < 0.6 else 1.0, 4)
            pose = np.concatenate([pos + rng.normal(0, spread, 3), target_quat / np.linalg.norm(target_quat)])
        grip = float(rng.uniform(-0.02, 0.1)) if rng.random() < 0.5 else None
        scenes.append((Command(tuple(pose.tolist()), None, grip), state))
    return scenes


def chain_latency(n: int) -> tuple[float, float, float]:
    """(p50, p99, max) microseconds per command."""
    rng = np.random.default_rng(0)
    chain = default_chain(load_limits("sim_panda", ARM_JOINTS), PERIOD)
    pool = random_scenes(min(n, 20_000), rng)
    gc.collect()
    gc.freeze()  # the pool is long-lived: keep the collector from walking it mid-measurement, as a robot process would
    times = np.empty(n)
    now, clock = 0.0, time.perf_counter_ns
    for i in range(n):
        command, state = pool[i % len(pool)]
        state.chart_cache = None  # each command meets its state afresh
        now += PERIOD
        start = clock()
        chain.apply(command, state, now)
        times[i] = clock() - start
    gc.unfreeze()
    us = times / 1000
    return float(np.percentile(us, 50)), float(np.percentile(us, 99)), float(us.max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    parser.add_argument("--commands", type=int, default=100_000, help="commands for the latency measurement")
    parser.add_argument("--steps", type=int, default=10_000, help="sim steps per policy")
    args = parser.parse_args()

    p50, p99, worst = chain_latency(args.commands)
    runs = {}
    for name, policy in (("random", random_policy), ("adversarial", adversarial_policy)):
        env = make_env(load_config(["task=pick_cube", "task.max_steps=200"]), with_cameras=False)
        start = time.perf_counter()
        runs[name] = run_policy(env, policy, args.steps)
        runs[name].seconds = time.perf_counter() - start
        env.close()
    rows = [
        ["chain_p50_us", p50, "", None],
        ["chain_p99_us", p99, "<= 50", p99 <= 50],
        ["chain_max_us", worst, "", None],
    ]
    for name, r in runs.items():
        rows += [
            [f"{name}_violations ({r.steps} steps)", r.violations, "0", r.violations == 0],
            [f"{name}_max_box_excess_mm", 1000 * r.max_box_excess, "0", r.max_box_excess == 0],
            [f"{name}_max_penetration_mm", 1000 * r.max_penetration, "0", None],
            [f"{name}_interventions", sum(r.events.values()), "", None],
            [f"{name}_steps_per_s", r.steps / r.seconds, "", None],
        ]
    summary = {
        "chain_p50_us": round(p50, 2), "chain_p99_us": round(p99, 2), "commands": args.commands,
        "steps": args.steps, "random_violations": runs["random"].violations,
        "adversarial_violations": runs["adversarial"].violations,
        "max_box_excess_mm": round(1000 * max(r.max_box_excess for r in runs.values()), 2),
        "interventions": {name: dict(r.events) for name, r in runs.items()}, "cpu_threads": os.cpu_count(),
    }
    print_report(f"safety chain (sim_panda limits, {args.commands} commands; pick_cube, {args.steps} steps per policy)",
                 ["metric", "value", "target", "met"], rows, summary, args.json)


if __name__ == "__main__":
    main()
