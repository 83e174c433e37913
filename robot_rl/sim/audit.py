"""Auditing the safety chain through the env: run a policy and count what got through.

Env-level: the policy's actions pass the env first, which caps them at ``pos_step`` a step
(2 cm on every task) with rotation off on every task, so these policies never reach the
step, speed, acceleration or orientation limits; they show what a learning policy can do.
:mod:`robot_rl.sim.arm_audit` sends commands straight to the arm and hits every filter.

Used by the tests and ``benchmarks/safety.py``. Two violations are counted per step, from
the simulator's ground truth rather than from the chain's own bookkeeping: the measured end
effector outside the workspace box (commands keep ``tracking_margin`` inside it), and any
gripper geom penetrating the table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from robot_rl.env.random_actions import random_action
from robot_rl.env.robot_env import RobotEnv


@dataclass
class AuditResult:
    steps: int = 0
    box_violations: int = 0  # steps with the measured end effector outside the box
    table_penetrations: int = 0  # steps with a gripper geom inside the table
    max_box_excess: float = 0.0  # m
    max_penetration: float = 0.0  # m
    events: Counter[str] = field(default_factory=Counter)

    @property
    def violations(self) -> int:
        return self.box_violations + self.table_penetrations


def table_penetration(env: RobotEnv) -> float:
    """How deep (m) the deepest gripper geom is inside the table; 0 when none touches it."""
    sim = env.backend.sim
    deepest = 0.0
    for c in sim.data.contact[: sim.data.ncon]:
        pair = (c.geom1, c.geom2)
        if sim.table_geom in pair and (pair[0] in sim.gripper_geoms or pair[1] in sim.gripper_geoms):
            deepest = max(deepest, -float(c.dist))
    return deepest


def box_excess(env: RobotEnv) -> float:
    """How far (m) the end effector is outside the env's workspace box; 0 inside."""
    low, high = env.workspace
    pos = env.backend.sim.ee_pose().pos
    return float(np.max(np.maximum(low - pos, 0.0) + np.maximum(pos - high, 0.0)))


def run_policy(env: RobotEnv, policy: Callable[[RobotEnv, np.random.Generator], np.ndarray], steps: int,
               seed: int = 0) -> AuditResult:
    """Step ``env`` with ``policy(env, rng)`` for ``steps`` steps (resetting as episodes end)."""
    rng = np.random.default_rng(seed)
    result = AuditResult()
    env.reset(seed=seed)
    episode = 0
    for _ in range(steps):
        _, _, terminated, truncated, info = env.step(policy(env, rng))
        result.steps += 1
        result.events.update(e.reason for e in info["safety_events"])
        excess, depth = box_excess(env), table_penetration(env)
        result.max_box_excess = max(result.max_box_excess, excess)
        result.max_penetration = max(result.max_penetration, depth)
        result.box_violations += excess > 0.0
        result.table_penetrations += depth > 0.0
        if terminated or truncated:
            episode += 1
            env.reset(seed=seed + episode)
    return result


def random_policy(env: RobotEnv, rng: np.random.Generator) -> np.ndarray:
    """Uniform actions (:func:`random_action`) in the audit's ``policy(env, rng)`` form."""
    return random_action(env.action_space, rng)


def adversarial_policy(env: RobotEnv, rng: np.random.Generator) -> np.ndarray:
    """Always full speed out of the box and down into the table, towards the nearest wall,
    turning as far as it can, and slamming the gripper; the corner it aims at changes now
    and then so that every face gets pushed."""
    low, high = env.workspace
    pos = env.backend.sim.ee_pose().pos
    away = np.where(pos > (low + high) / 2, 1.0, -1.0)
    if rng.random() < 0.05:  # now and then head for the opposite wall instead
        away = -away
    action = np.ones(env.action_space.shape, np.float32)
    action[:3] = away
    action[2] = -1.0  # into the table
    if env.action_spec.rotation:
        action[3:6] = np.sign(rng.normal(size=3)) if rng.random() < 0.1 else 1.0
    if env.action_spec.gripper:
        action[-1] = rng.choice([-1.0, 1.0])
    return action
