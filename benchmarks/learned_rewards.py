"""Learning pick_cube from pixels with no env reward: a learned_progress reward model pays instead.

    python benchmarks/learned_rewards.py [--demos 20] [--env-steps 40000] [--json] [key=value ...]

1. records ``--demos`` scripted-expert demonstrations (the sim's reward, only to know which
   succeeded) and ``--failures`` random-policy episodes, and trains ``learned_progress`` on
   them (``robot-rl reward-model train``: progress along the successes, 0 on the failures);
2. trains SAC/RLPD from pixels, actor and learner in lockstep, with ``reward_model.name=learned_progress``:
   rewards, and the end of an episode, come from the reward model (potential-based shaping plus a
   success bonus after confirming frames); the demo buffer is recorded again under those rewards;
3. evaluates every ``--eval-every`` steps by the sim's ground truth, stopping at ``--stop-at``.

Reports env steps to 70 % eval success (``steps_to_70``), the final success and the curve.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

from robot_rl.data import EpisodeStore, StoreSpec
from robot_rl.logs import setup_logging
from robot_rl.report import print_report, steps_to
from robot_rl.rewards.evaluate import train_reward_model
from robot_rl.rl.assembly import record_demos
from robot_rl.rl.rollout import make_policy, rollout
from robot_rl.rl.train import train_in_process
from robot_rl.robots import make_env
from robot_rl.schema import load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demos", type=int, default=20)
    parser.add_argument("--failures", type=int, default=20, help="random-policy episodes: the reward model's negatives")
    parser.add_argument("--env-steps", type=int, default=40_000)
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--stop-at", type=float, default=0.7)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    setup_logging()
    root = Path(tempfile.mkdtemp(prefix="learned_rewards_"))
    base = ["task=pick_cube", "logging.wandb=disabled", "train.processes=1", *args.overrides]

    reward_data = record_demos(load_config(base, name="train"), root / "reward_data.zarr", args.demos)
    random_cfg = load_config([*base, "policy=random"], name="train")
    env = make_env(random_cfg)
    with EpisodeStore.append_or_create(reward_data, StoreSpec.from_spaces(env.observation_space,
                                                                          env.action_space.shape[0])) as store:
        rollout(env, make_policy(random_cfg, env, 70_000), args.failures, 70_000, progress_bar=False, store=store)
    env.close()
    model_path, model_summary = train_reward_model(
        load_config([*base, "reward_model.name=learned_progress", f"data={reward_data}", f"out={root / 'progress.pt'}"],
                    name="train"), root)
    cfg = load_config([*base, "reward_model.name=learned_progress", f"reward_model.path={model_path}",
                       f"train.demos={args.demos}", f"train.env_steps={args.env_steps}",
                       f"train.eval_every={args.eval_every}", f"train.eval_episodes={args.eval_episodes}",
                       f"train.stop_at={args.stop_at}", f"run_dir={root / 'train'}"], name="train")
    report = train_in_process(cfg, root / "train", progress_bar=not args.json)
    summary = {"steps_to_70": steps_to(report.curve, 0.7), "final_success": report.final_success,
               "env_steps": report.env_steps, "wall_s": round(report.wall_s, 1), "curve": report.curve,
               "demos": args.demos,
               "reward_model_train_s": model_summary["train_s"], "failures": model_summary["failures"],
               "run": str(root), "overrides": args.overrides}
    print_report(f"pick_cube from pixels rewarded by learned_progress (no env reward), {args.demos} demos, "
                 f"{report.wall_s:.0f} s", ["env steps", "eval success (sim ground truth)"],
                 [list(point) for point in report.curve], summary, args.json)


if __name__ == "__main__":
    main()
