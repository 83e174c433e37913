"""The ``robot-rl`` command: ``robot-rl <command> [key=value ...]``."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from robot_rl.config import ConfigError, load_config, to_yaml


def _run_dir(cfg, command: str) -> Path:
    path = Path(cfg.run_dir) if cfg.run_dir else Path("runs") / command / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(to_yaml(cfg))
    return path


def cmd_rollout(overrides: list[str]) -> int:
    """Run a policy (expert or random) for some episodes and print a per-episode table."""
    from robot_rl.env.factory import make_env
    from robot_rl.rollout import make_policy, results_table, rollout

    cfg = load_config(overrides)
    env = make_env(cfg, render_mode="rgb_array" if cfg.video else None)
    try:
        policy = make_policy(cfg, env, cfg.seed)
        run_dir = _run_dir(cfg, "rollout")
        results = rollout(env, policy, cfg.episodes, cfg.seed, cfg.video, cfg.logging.progress_bar)
    finally:
        env.close()
    table = results_table(results)
    (run_dir / "episodes.txt").write_text(table + "\n")
    print(f"task={cfg.task.name} policy={cfg.policy.name} robot={cfg.robot.backend}")
    print(table)
    print(f"config and results: {run_dir}" + (f"; video: {cfg.video}" if cfg.video else ""))
    return 0


COMMANDS = {"rollout": cmd_rollout}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="robot-rl",
        description="Reinforcement learning on robot arms. Every command takes hydra key=value overrides.",
        epilog="example: robot-rl rollout task=pick_cube policy=expert episodes=10 video=pick.mp4",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, fn in COMMANDS.items():
        p = sub.add_parser(name, help=fn.__doc__.splitlines()[0], description=fn.__doc__)
        p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args.overrides)
    except ConfigError as e:
        print(f"robot-rl: config error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("robot-rl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
