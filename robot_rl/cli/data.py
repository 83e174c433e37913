"""``robot-rl data``: inspect an EpisodeStore (info, check, video), and move episodes from and
to ROS 2 bags and LeRobotDatasets. Its options are ``key=value`` items (:func:`split_options`);
those a sub-command does not take are config overrides, where it reads a config."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection

from robot_rl.config import ConfigError
from robot_rl.schema import load_config


class DataCommandError(ValueError):
    """A ``robot-rl data`` sub-command that cannot run as asked (usage, input); one line."""


def split_options(items: list[str], known: Collection[str], prefixes: tuple[str, ...] = (),
                  ) -> tuple[dict[str, str], list[str]]:
    """Split ``key=value`` items into a command's own options (a key in ``known`` or starting with one of
    ``prefixes``; the last of a key wins) and the other items, as given (config overrides, or options the
    command does not know). Items without ``=`` are dropped."""
    opts: dict[str, str] = {}
    rest: list[str] = []
    for item in items:
        if "=" not in item:
            continue
        key, value = item.split("=", 1)
        if key in known or key.startswith(prefixes):
            opts[key] = value
        else:
            rest.append(item)
    return opts, rest


def cmd_data(args: argparse.Namespace) -> int:
    """Inspect an EpisodeStore (info, check, video), or move episodes from and to ROS 2 bags and LeRobotDatasets."""
    try:
        return _run(args)
    except ConfigError:
        raise  # robot-rl's own line for config errors
    except (ValueError, FileNotFoundError, IndexError) as e:  # a bad option, bag, dataset or store: one line
        print(f"robot-rl: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from robot_rl.data import EpisodeStore
    from robot_rl.data.inspect import episode_frames, store_info
    from robot_rl.rl.rollout import write_video

    if args.action == "import-bag":
        return _import_bag(args.path, args.options)
    if args.action == "export-bag":
        return _export_bag(args.path, args.options)
    if args.action == "import-lerobot":
        return _import_lerobot(args.path, args.options)
    if args.action == "export-lerobot":
        return _export_lerobot(args.path, args.options)
    with EpisodeStore.open(args.path, mode="r") as store:
        if args.action == "info":
            print(store_info(store))
            return 0
        if args.action == "check":
            problems = store.check()
            for problem in problems:
                print(f"damaged: {problem}")
            print(f"{args.path}: {len(store.episodes())} episodes, "
                  + ("no damage found" if not problems else f"{len(problems)} problem(s)"))
            return 1 if problems else 0
        opts, unknown = split_options(args.options, ("episode", "out", "fps"))
        if unknown or "episode" not in opts:
            raise DataCommandError("usage: robot-rl data video PATH episode=N [out=episode.mp4] [fps=10]")
        index = int(opts["episode"])
        if not 0 <= index < len(store.episodes()):
            raise DataCommandError(f"{args.path} has episodes 0..{len(store.episodes()) - 1}, not {index}")
        out = opts.get("out", f"episode_{index}.mp4")
        write_video(out, episode_frames(store, index), fps=float(opts.get("fps", 10)))
        print(f"wrote {out}")
        return 0


BAG_OPTIONS = ("out", "rate", "phase", "ee_pose", "joint_states", "command")


def _import_bag(bag: str, options: list[str]) -> int:
    """robot-rl data import-bag BAG out=STORE [rate=HZ phase=F ee_pose=T joint_states=T command=T
    image.<camera>=T] [config overrides: robot=... cameras=... task=...]"""
    from robot_rl.data import EpisodeStore, StoreSpec
    from robot_rl.data.bags import BagTopics, import_bag
    from robot_rl.env.factory import image_transforms, spaces_from_config
    from robot_rl.env.robot_env import ActionSpec

    opts, overrides = split_options(options, BAG_OPTIONS, prefixes=("image.",))
    cfg = load_config(overrides)
    if "out" not in opts:
        raise DataCommandError("usage: robot-rl data import-bag BAG out=STORE [rate=HZ] [image.<camera>=TOPIC ...] "
                               "[robot=... cameras=... task=...]")
    images = {name: opts.get(f"image.{name}", f"{name}/image_raw") for name in cfg.cameras}
    topics = BagTopics(images, opts.get("ee_pose", "/ee_pose"), opts.get("joint_states", "/joint_states") or None,
                       opts.get("command", "/target_pose"))
    obs_space, action_dim = spaces_from_config(cfg)
    try:
        rate, phase = float(opts.get("rate", cfg.robot.control_hz)), float(opts.get("phase", 0.25))
    except ValueError as e:
        raise DataCommandError(f"rate and phase must be numbers: {e}") from None
    with EpisodeStore.append_or_create(opts["out"], StoreSpec.from_spaces(obs_space, action_dim)) as store:
        steps = import_bag(bag, store, ActionSpec(**cfg.task.action), image_transforms(cfg),
                           list(cfg.robot.proprio), rate, topics, phase, task=cfg.task.name)
    print(f"imported {bag}: {steps} steps at {opts.get('rate', cfg.robot.control_hz)} Hz into {opts['out']}")
    return 0


def _export_bag(path: str, options: list[str]) -> int:
    """robot-rl data export-bag STORE episode=N out=BAG [storage=mcap|sqlite3 rate=HZ] [config overrides]"""
    from robot_rl.data import EpisodeStore
    from robot_rl.data.bags import BagTopics, export_bag
    from robot_rl.env.robot_env import ActionSpec

    opts, overrides = split_options(options, ("episode", "out", "storage", "rate"))
    cfg = load_config(overrides)
    if "out" not in opts or "episode" not in opts:
        raise DataCommandError("usage: robot-rl data export-bag STORE episode=N out=BAG [storage=mcap|sqlite3] "
                               "[rate=HZ] [robot=... cameras=... task=...]")
    with EpisodeStore.open(path) as store:
        episode = store.load_episode(int(opts["episode"]))
    count = export_bag(episode, opts["out"], ActionSpec(**cfg.task.action), list(cfg.robot.proprio),
                       float(opts.get("rate", cfg.robot.control_hz)),
                       BagTopics({name: f"{name}/image_raw" for name in cfg.cameras}, joint_states=None),
                       opts.get("storage", "mcap"))
    print(f"wrote {opts['out']}: {count} messages")
    return 0


def _import_lerobot(root: str, options: list[str]) -> int:
    """robot-rl data import-lerobot DATASET out=STORE [source=demo] [config overrides: robot=, cameras=, task=]"""
    from robot_rl.data import EpisodeStore, StoreSpec
    from robot_rl.data.lerobot import check_lerobot, import_lerobot
    from robot_rl.env.factory import image_transforms, spaces_from_config

    opts, overrides = split_options(options, ("out", "source"))
    cfg = load_config(overrides)
    if "out" not in opts:
        raise DataCommandError("usage: robot-rl data import-lerobot DATASET out=STORE [source=demo] "
                               "[robot=... cameras=... task=...]")
    spec = StoreSpec.from_spaces(*spaces_from_config(cfg))
    check_lerobot(root, spec)  # before a store is created for it
    with EpisodeStore.append_or_create(opts["out"], spec) as store:
        episodes, steps = import_lerobot(root, store, image_transforms(cfg), opts.get("source", "demo"))
    print(f"imported {root}: {episodes} episodes, {steps} steps into {opts['out']}")
    return 0


def _export_lerobot(path: str, options: list[str]) -> int:
    """robot-rl data export-lerobot STORE out=DATASET [fps=HZ task=TEXT robot_type=NAME]"""
    from robot_rl.data import EpisodeStore
    from robot_rl.data.lerobot import export_lerobot

    opts, unknown = split_options(options, ("out", "fps", "task", "robot_type"))
    if unknown or "out" not in opts:
        raise DataCommandError("usage: robot-rl data export-lerobot STORE out=DATASET [fps=10] [task=TEXT] "
                               "[robot_type=NAME]")
    with EpisodeStore.open(path) as store:
        frames = export_lerobot(store, opts["out"], float(opts.get("fps", 10)), opts.get("task"),
                                opts.get("robot_type"))
    print(f"wrote {opts['out']}: {frames} frames")
    return 0
