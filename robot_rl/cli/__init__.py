"""The ``robot-rl`` command: ``robot-rl <command> [key=value ...]``.

This module parses the command line and dispatches; the commands live beside it, in
:mod:`robot_rl.cli.run` (the commands that run from a config) and :mod:`robot_rl.cli.data`
(``robot-rl data``)."""

from __future__ import annotations

import argparse
import sys

from robot_rl.cli.data import cmd_data
from robot_rl.cli.run import (
    cmd_actor,
    cmd_calibrate,
    cmd_eval,
    cmd_learner,
    cmd_offline,
    cmd_record,
    cmd_reward_model,
    cmd_rollout,
    cmd_train,
)
from robot_rl.config import ConfigError
from robot_rl.data.store_format import StoreFormatError
from robot_rl.rl.checkpoints import CheckpointError
from robot_rl.rl.supervisor import RunFailed

COMMANDS = {"rollout": cmd_rollout, "record": cmd_record, "train": cmd_train, "offline": cmd_offline,
            "learner": cmd_learner, "actor": cmd_actor, "eval": cmd_eval}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robot-rl",
        description="Reinforcement learning on robot arms. Every command takes hydra key=value overrides.",
        epilog="example: robot-rl rollout task=pick_cube policy=expert episodes=10 video=pick.mp4",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, fn in COMMANDS.items():
        p = sub.add_parser(name, help=fn.__doc__.splitlines()[0], description=fn.__doc__)
        p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    data = sub.add_parser("data", help=cmd_data.__doc__, description=cmd_data.__doc__)
    data.add_argument("action", choices=["info", "check", "video", "import-bag", "export-bag", "import-lerobot",
                                         "export-lerobot"])
    data.add_argument("path", help="an EpisodeStore (.zarr folder); for import-bag a ROS 2 bag, for import-lerobot "
                                   "a LeRobotDataset folder (v2.x)")
    data.add_argument("options", nargs="*", metavar="key=value",
                      help="video: episode=N out=PATH fps=10; import-bag: out=STORE rate=HZ image.<camera>=TOPIC "
                           "ee_pose=T joint_states=T command=T; export-bag: episode=N out=BAG storage=mcap; "
                           "import-lerobot: out=STORE source=demo; export-lerobot: out=DIR fps=10 task=TEXT; and "
                           "config overrides (robot=, cameras=, task=)")
    reward_model = sub.add_parser("reward-model", help=cmd_reward_model.__doc__.splitlines()[0],
                                  description=cmd_reward_model.__doc__,
                                  epilog="example: robot-rl reward-model train reward_model.name=learned_progress "
                                         "task=pick_cube data=runs/demos.zarr out=progress.pt; "
                                         "robot-rl reward-model eval reward_model.name=learned_progress "
                                         "reward_model.path=progress.pt "
                                         "data=runs/held_out.zarr")
    reward_model.add_argument("action", choices=["train", "eval"])
    reward_model.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    reward_model.add_argument("overrides", nargs="*", metavar="key=value",
                              help="config overrides (reward_model.*, data, out)")
    calibrate = sub.add_parser("calibrate", help=cmd_calibrate.__doc__.splitlines()[0],
                               description=cmd_calibrate.__doc__ + " Options: see config/calibrate.yaml.",
                               epilog="example: robot-rl calibrate handeye calibrate.rig=lab1 calibrate.source=files "
                                      "calibrate.images=shots/ calibrate.poses=rigs/lab1/handeye_poses.yaml")
    calibrate.add_argument("action", choices=["intrinsics", "handeye", "poses", "workspace"])
    calibrate.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (calibrate.*)")
    return parser


RENAMED_COMMANDS = {"critic": "reward-model"}  # old → new (issue 17: "critic" is SAC's Q-function)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in RENAMED_COMMANDS:
        sys.exit(f"robot-rl: the '{argv[0]}' command was renamed: robot-rl {RENAMED_COMMANDS[argv[0]]} "
                 f"{' '.join(argv[1:])}".rstrip())
    # argparse cannot take an option between a subcommand's positional lists: read --json anywhere
    as_json = argv[:1] == ["reward-model"] and "--json" in argv
    args = build_parser().parse_args([a for a in argv if not (as_json and a == "--json")])
    if as_json:
        args.json = True
    return args


def run_command(args: argparse.Namespace) -> int:
    if args.command == "data":
        return cmd_data(args)
    if args.command == "calibrate":
        return cmd_calibrate(args)
    if args.command == "reward-model":
        return cmd_reward_model(args)
    return COMMANDS[args.command](args.overrides)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run_command(args)
    except ConfigError as e:
        print(f"robot-rl: config error: {e}", file=sys.stderr)
        return 2
    except (StoreFormatError, CheckpointError) as e:
        print(f"robot-rl: {e}", file=sys.stderr)
        return 2
    except RunFailed as e:
        print(f"robot-rl: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("robot-rl: interrupted", file=sys.stderr)
        return 130
