"""Simulator throughput and scripted-expert success.

    python benchmarks/sim_speed.py [--json] [--steps N] [--episodes N]

steps_per_s_pixels: env steps/s with the default two 128×128 cameras rendered offscreen;
steps_per_s_state: env steps/s without rendering; expert_success: task → success rate of
the scripted expert over seeded episodes. Random actions drive the speed runs, with
resets included as they happen (each control step is 0.1 s of simulated time).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

from robot_rl.env.random_actions import RandomPolicy
from robot_rl.report import print_report
from robot_rl.robots import make_env
from robot_rl.schema import load_config
from robot_rl.sim.expert import ScriptedExpert

TASKS = ("reach", "push_cube", "pick_cube")


def steps_per_second(with_cameras: bool, steps: int) -> float:
    env = make_env(load_config(["task=pick_cube"]), with_cameras=with_cameras)
    policy = RandomPolicy(env.action_space, seed=0)
    env.reset(seed=0)
    elapsed = 0.0
    for _ in range(steps):
        action = policy.act()
        start = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(action)
        elapsed += time.perf_counter() - start
        if terminated or truncated:
            env.reset()
    env.close()
    return steps / elapsed


def expert_success(task: str, episodes: int) -> float:
    env = make_env(load_config([f"task={task}"]), with_cameras=False)
    expert = ScriptedExpert(env)
    wins = 0
    for seed in range(episodes):
        obs, _ = env.reset(seed=1000 + seed)  # seeds apart from the tests'
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(expert.act(obs))
            done = terminated or truncated
        wins += info["is_success"]
    env.close()
    return wins / episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    parser.add_argument("--steps", type=int, default=600, help="env steps per speed measurement")
    parser.add_argument("--episodes", type=int, default=50, help="expert episodes per task")
    args = parser.parse_args()

    pixels = steps_per_second(True, args.steps)
    state = steps_per_second(False, args.steps * 3)
    success = {task: expert_success(task, args.episodes) for task in TASKS}
    rows = [
        ["steps_per_s_pixels", pixels, ">= 30", pixels >= 30],
        ["steps_per_s_state", state, ">= 300", state >= 300],
        *([f"expert_success[{t}]", s, ">= 0.95", s >= 0.95] for t, s in success.items()),
    ]
    summary = {"steps_per_s_pixels": round(pixels, 1), "steps_per_s_state": round(state, 1),
               "expert_success": success, "cpu_threads": os.cpu_count(), "numpy": np.__version__}
    print_report(f"sim speed (2 cameras at 128x128, control at 10 Hz, {args.episodes} expert episodes per task)",
                 ["metric", "value", "target", "met"], rows, summary, args.json)


if __name__ == "__main__":
    main()
