"""Safety chain latency as production runs it, and what commands sent straight to the
simulated arm get past the chain, judged on the simulator's ground truth.

    python benchmarks/safety.py [--json] [--quick] [--limits NAME]

Latency (chain_p50_us / chain_p99_us / chain_max_us): one ``SafetyChain.apply`` of the
sim_panda chain per command, on a fresh ``RobotState`` built from the driver's reading for
each command, as ``SafeArm.submit`` builds it; the garbage collector runs as it does in
production (nothing frozen, nothing disabled), and the reading is not timed.
submit_p50_us / submit_p99_us: the whole ``SafeArm.submit`` (reading the state, the
watchdog, the chain, the events, sending) on an in-memory arm and gripper that cost
nothing, so the figure is the safety layer's own. The states and commands are random:
positions in and around the box, any orientation, joints near and past their limits,
contact forces, fast joints; small moves, far targets, NaN/inf/huge values.

Arm audit (``robot_rl.sim.arm_audit``): commands sent straight to the sim arm's SafeArm
(the one the sim backend builds), not through the env (whose actions are capped at 2 cm a
step, with rotation off on every task): far jumps, fast sweeps and abrupt reversals, big
turns, targets under the table and outside the box, pressing on the cube, NaN, gripper
slams, silences, at intervals down to one physics step. Each filter must act (acted > 0),
and nothing may get past a limit: each command that reached the arm's driver is checked
against the step, speed and acceleration limits (and their rotation twins), joint targets
against the joint limits and speeds, gripper openings against their range and rate; the
measured arm, every 10 ms of sim time, against the box, the orientation bounds, the joint
limits and the table. A second audit adds joint targets (past the limits, anywhere): the
end-effector filters do not judge those (``SafeArm``'s documented limit), so where they
take the end effector is reported, not targeted.

Env-level policies (``robot_rl.sim.audit``): a random policy and one that always pushes out
of the box and into the table, through the env (pick_cube, state only): what a learning
policy can do, which is much less than the arm audit.

Run it on an otherwise idle machine: with both cores of a 2-core box busy, the latency
figures come out about 2.5× higher.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

from robot_rl.drivers.base import Arm, ArmState, Gripper, GripperState
from robot_rl.logs import setup_logging
from robot_rl.report import print_report
from robot_rl.robots import make_env
from robot_rl.safety import Command, RobotState, SafeArm, default_chain, load_limits
from robot_rl.safety.rotations import rpy_to_quat
from robot_rl.schema import load_config
from robot_rl.sim.arm_audit import CHAIN_FILTERS, CHECKS, ArmAuditResult, run_arm_audit
from robot_rl.sim.audit import adversarial_policy, random_policy, run_policy
from robot_rl.sim.simulation import ARM_JOINTS

PERIOD = 0.1
P99_TARGET_US = 50.0
#: checks that joint targets can break without the chain being at fault (it does not judge them)
EE_CHECKS = ("box", "orientation", "table", "joint_position")


class Scenes:
    """Random arm readings and commands, as arrays (what a driver hands over)."""

    def __init__(self, n: int, limits_name: str, rng: np.random.Generator):
        limits = load_limits(limits_name, ARM_JOINTS)
        lower = np.array([j.lower for j in limits.joints.limits.values()])
        upper = np.array([j.upper for j in limits.joints.limits.values()])
        self.n = n
        pos = rng.uniform([0.15, -0.5, -0.05], [0.85, 0.5, 0.5], (n, 3))
        quats = [rpy_to_quat(math.pi + rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4), rng.uniform(-2, 2))
                 if rng.random() < 0.7 else tuple(q / np.linalg.norm(q)) for q in rng.normal(size=(n, 4))]
        self.pose = np.concatenate([pos, np.array(quats)], axis=1)
        self.wrench = rng.normal(0, 1, (n, 6)) * np.where(rng.random((n, 1)) < 0.2, 40, 3)
        self.dq = rng.normal(0, 1, (n, 7)) * np.where(rng.random((n, 1)) < 0.9, 0.2, 2.0)
        self.q = rng.uniform(lower - 0.05, upper + 0.05, (n, 7))
        self.width = rng.uniform(0, 0.08, n)
        self.commands = [self._command(self.pose[i], rng) for i in range(n)]

    @staticmethod
    def _command(now: np.ndarray, rng: np.random.Generator) -> Command:
        kind = rng.random()
        if kind < 0.05:  # NaN, inf, huge
            pose = rng.choice([np.nan, np.inf, -np.inf, 1e300, 0.3], size=7)
        else:
            spread = 0.02 if kind < 0.6 else 0.5
            quat = now[3:] + rng.normal(0, 0.05 if kind < 0.6 else 1.0, 4)
            pose = np.concatenate([now[:3] + rng.normal(0, spread, 3), quat / np.linalg.norm(quat)])
        grip = float(rng.uniform(-0.02, 0.1)) if rng.random() < 0.5 else None
        return Command(tuple(pose.tolist()), None, grip)

    def reading(self, i: int, stamp: float) -> tuple[ArmState, GripperState]:
        return (ArmState(self.q[i], self.dq[i], self.pose[i], self.wrench[i], stamp),
                GripperState(float(self.width[i]), stamp))


class ReplayArm(Arm):
    """An arm (and gripper) that costs nothing: it reads back scene ``index`` at ``now``."""

    takes_joint_commands, senses_force = True, True

    def __init__(self, scenes: Scenes):
        self.scenes, self.index, self.now = scenes, 0, 0.0

    def state(self) -> ArmState:
        return self.scenes.reading(self.index, self.now)[0]

    def command(self, target: np.ndarray) -> None: ...

    def command_joints(self, q: np.ndarray) -> None: ...

    def stop(self) -> None: ...

    @property
    def home_pose(self) -> np.ndarray:
        return self.scenes.pose[0]


class ReplayGripper(Gripper):
    max_width = 0.08

    def __init__(self, arm: ReplayArm):
        self.arm = arm

    def state(self) -> GripperState:
        return self.arm.scenes.reading(self.arm.index, self.arm.now)[1]

    def command(self, width: float) -> None: ...


def percentiles(ns: np.ndarray) -> tuple[float, float, float]:
    us = ns / 1000
    return float(np.percentile(us, 50)), float(np.percentile(us, 99)), float(us.max())


def chain_latency(n: int, limits_name: str) -> tuple[float, float, float]:
    """(p50, p99, max) µs of ``SafetyChain.apply``, each on a freshly built state."""
    scenes = Scenes(min(n, 20_000), limits_name, np.random.default_rng(0))
    chain = default_chain(load_limits(limits_name, ARM_JOINTS), PERIOD)
    times, now, clock = np.empty(n), 0.0, time.perf_counter_ns
    for i in range(n):
        j = i % scenes.n
        now += PERIOD
        arm, grip = scenes.reading(j, now)
        state = RobotState(arm, grip)
        start = clock()
        chain.apply(scenes.commands[j], state, now)
        times[i] = clock() - start
    return percentiles(times)


def submit_latency(n: int, limits_name: str) -> tuple[float, float, float]:
    """(p50, p99, max) µs of ``SafeArm.submit`` on an arm that costs nothing."""
    scenes = Scenes(min(n, 20_000), limits_name, np.random.default_rng(1))
    driver = ReplayArm(scenes)
    safe = SafeArm.from_limits(driver, load_limits(limits_name, ARM_JOINTS), PERIOD, clock=lambda: driver.now,
                               gripper=ReplayGripper(driver))
    times, clock = np.empty(n), time.perf_counter_ns
    for i in range(n):
        driver.index, driver.now = i % scenes.n, driver.now + PERIOD
        start = clock()
        safe.submit(scenes.commands[driver.index])
        times[i] = clock() - start
        safe.take_events()  # the env takes them every step
    return percentiles(times)


def arm_audit(commands: int, limits_name: str, joint_targets: bool) -> tuple[ArmAuditResult, float]:
    env = make_env(load_config(["task=pick_cube", f"robot.safety={limits_name}"]), with_cameras=False)
    start = time.perf_counter()
    result = run_arm_audit(env, commands, seed=0, joint_targets=joint_targets)
    seconds = time.perf_counter() - start
    env.close()
    return result, seconds


def env_policies(steps: int, limits_name: str) -> dict:
    runs = {}
    for name, policy in (("random", random_policy), ("adversarial", adversarial_policy)):
        cfg = load_config(["task=pick_cube", "task.max_steps=200", f"robot.safety={limits_name}"])
        env = make_env(cfg, with_cameras=False)
        start = time.perf_counter()
        runs[name] = run_policy(env, policy, steps)
        runs[name].seconds = time.perf_counter() - start
        env.close()
    return runs


def audit_summary(r: ArmAuditResult, seconds: float, counted: tuple[str, ...]) -> dict:
    """The JSON of an arm audit; ``violations`` sums the checks in ``counted``."""
    return {
        "commands": r.commands, "sim_seconds": round(r.sim_seconds, 1), "wall_seconds": round(seconds, 1),
        "violations": sum(r.violations[c] for c in counted),
        "violations_by_check": {c: r.violations[c] for c in CHECKS},
        "peak": {c: (None if math.isinf(v) else round(v, 6)) for c, v in r.peak.items()},
        "acted": {f: r.acted[f] for f in (*CHAIN_FILTERS, "watchdog")}, "unexercised": r.unexercised,
        "events": dict(r.events), "max_contact_force_n": round(r.max_contact_force, 1),
        "overspeed_samples": r.overspeed_samples, "max_joint_speed_ratio": round(r.max_joint_speed_ratio, 2),
        "violations_after_overspeed": dict(r.after_overspeed),
    }


def audit_rows(name: str, r: ArmAuditResult, checks: tuple[str, ...], targeted: bool) -> list[list]:
    rows = []
    for c in checks:
        peak = r.peak[c]
        label = f"{name}: {c} violations (peak {'—' if math.isinf(peak) else f'{peak:+.4g}'})"
        rows.append([label, r.violations[c], "0" if targeted else "", r.violations[c] == 0 if targeted else None])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    parser.add_argument("--quick", action="store_true", help="a smoke run, well under a minute")
    parser.add_argument("--commands", type=int, help="commands for each latency measurement (default 100k)")
    parser.add_argument("--arm-commands", type=int, help="commands of the arm audit (default 10k)")
    parser.add_argument("--steps", type=int, help="env steps per env-level policy (default 10k)")
    parser.add_argument("--limits", default="sim_panda", help="safety limits file (name in config/safety or path)")
    args = parser.parse_args()
    setup_logging(logging.ERROR)  # the audits trip the alarming filters on purpose, thousands of times
    n = args.commands or (10_000 if args.quick else 100_000)
    arm_n = args.arm_commands or (800 if args.quick else 10_000)
    steps = args.steps or (300 if args.quick else 10_000)

    chain = chain_latency(n, args.limits)
    submit = submit_latency(n, args.limits)
    pose, pose_s = arm_audit(arm_n, args.limits, joint_targets=False)
    joint, joint_s = arm_audit(max(arm_n // 4, 200), args.limits, joint_targets=True)
    runs = env_policies(steps, args.limits)

    joint_checks = tuple(c for c in CHECKS if c not in EE_CHECKS)
    rows = [
        ["chain p50, µs", chain[0], "", None],
        ["chain p99, µs", chain[1], f"<= {P99_TARGET_US:g}", chain[1] <= P99_TARGET_US],
        ["chain max, µs", chain[2], "", None],
        ["SafeArm.submit p50, µs", submit[0], "", None],
        ["SafeArm.submit p99, µs", submit[1], "", None],
        [f"arm audit: commands ({pose.sim_seconds:.0f} s of sim time, {pose_s:.0f} s)", pose.commands, "", None],
    ]
    rows += [[f"arm audit: commands the {f} filter acted on", pose.acted[f], "> 0", pose.acted[f] > 0]
             for f in CHAIN_FILTERS]
    rows += [["arm audit: watchdog halts", pose.acted["watchdog"], "", None]]
    rows += audit_rows("arm audit", pose, tuple(CHECKS), True)
    rows += [["arm audit: measured joint over its speed limit, checks", pose.overspeed_samples, "", None],
             ["arm audit: violations of the measured arm ≤ 0.2 s after one", sum(pose.after_overspeed.values()), "",
              None],
             ["arm audit: fastest joint ÷ its speed limit", pose.max_joint_speed_ratio, "", None],
             ["arm audit: max contact force, N", pose.max_contact_force, "", None],
             [f"joint-target audit: commands ({joint_s:.0f} s)", joint.commands, "", None],
             ["joint-target audit: joint targets the joints filter clipped", joint.events["joint_target_limit"],
              "> 0", joint.events["joint_target_limit"] > 0]]
    rows += audit_rows("joint-target audit", joint, joint_checks, True)
    rows += audit_rows("joint-target audit (EE filters do not judge joint targets)", joint, EE_CHECKS, False)
    for name, r in runs.items():
        rows += [
            [f"env-level {name} policy: violations ({r.steps} steps, {r.steps / r.seconds:.0f} steps/s)",
             r.violations, "0", r.violations == 0],
            [f"env-level {name} policy: max box excess, mm", 1000 * r.max_box_excess, "0", r.max_box_excess == 0],
            [f"env-level {name} policy: interventions", sum(r.events.values()), "", None],
        ]
    summary = {
        "chain_p50_us": round(chain[0], 2), "chain_p99_us": round(chain[1], 2), "chain_max_us": round(chain[2], 1),
        "submit_p50_us": round(submit[0], 2), "submit_p99_us": round(submit[1], 2), "latency_commands": n,
        "latency_conditions": "gc on, nothing frozen; a fresh RobotState per command (not timed in chain_*); "
                              "submit_* on an arm that costs nothing",
        "arm_audit": audit_summary(pose, pose_s, tuple(CHECKS)),
        "joint_target_audit": audit_summary(joint, joint_s, joint_checks),
        "env_steps": steps, "env_random_violations": runs["random"].violations,
        "env_adversarial_violations": runs["adversarial"].violations,
        "env_max_box_excess_mm": round(1000 * max(r.max_box_excess for r in runs.values()), 2),
        "env_interventions": {name: dict(r.events) for name, r in runs.items()},
        "limits": args.limits, "quick": args.quick, "cpu_cores": len(os.sched_getaffinity(0)),
    }
    summary["targets_met"] = all(row[3] for row in rows if row[3] is not None)
    for row in rows:
        row[3] = {True: "yes", False: "NO", None: ""}[row[3]]
    print_report(f"safety chain ({args.limits}; latency over {n} commands; arm audit {arm_n} commands; "
                 f"env-level pick_cube {steps} steps per policy)", ["figure", "value", "target", "met"], rows,
                 summary, args.json)


if __name__ == "__main__":
    main()
