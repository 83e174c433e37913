"""The ``robot-rl`` command: ``robot-rl <command> [key=value ...]``."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from datetime import datetime
from pathlib import Path

from robot_rl.config import ConfigError, load_config
from robot_rl.data.episode_store import StoreFormatError
from robot_rl.rl.checkpoints import CheckpointError, checkpoint_file, load_agent_state, load_checkpoint
from robot_rl.rl.supervisor import RunFailed
from robot_rl.secrets import redacted_yaml


def _run_dir(cfg, command: str) -> Path:
    path = Path(cfg.run_dir) if cfg.run_dir else Path("runs") / command / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(redacted_yaml(cfg))  # secrets (learner.token, ...) as <redacted>
    return path


def cmd_rollout(overrides: list[str]) -> int:
    """Run a policy (expert or random) for some episodes and print a per-episode table."""
    from robot_rl.data import EpisodeStore, StoreSpec
    from robot_rl.env.factory import make_env
    from robot_rl.rollout import make_policy, results_table, rollout

    cfg = load_config(overrides)
    env = make_env(cfg, render_mode="rgb_array" if cfg.video else None)
    store = None
    try:
        policy = make_policy(cfg, env, cfg.seed)
        run_dir = _run_dir(cfg, "rollout")
        if cfg.record:
            store = EpisodeStore.append_or_create(Path(cfg.record), StoreSpec.from_spaces(
                env.observation_space, env.action_space.shape[0]))
        source = "demo" if cfg.policy.name == "expert" else "eval"
        results = rollout(env, policy, cfg.episodes, cfg.seed, cfg.video, cfg.logging.progress_bar, store, source)
    finally:
        if store is not None:
            store.close()
        env.close()
    table = results_table(results)
    (run_dir / "episodes.txt").write_text(table + "\n")
    print(f"task={cfg.task.name} policy={cfg.policy.name} robot={cfg.robot.backend}")
    print(table)
    print(f"config and results: {run_dir}" + (f"; video: {cfg.video}" if cfg.video else "")
          + (f"; recorded to: {cfg.record}" if cfg.record else ""))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    """Inspect an EpisodeStore (info, check, video), or move episodes from and to ROS 2 bags and LeRobotDatasets."""
    from robot_rl.data import EpisodeStore
    from robot_rl.data.inspect import episode_frames, store_info
    from robot_rl.rollout import write_video

    if args.action == "import-bag":
        return _import_bag(args.path, args.options)
    if args.action == "export-bag":
        return _export_bag(args.path, args.options)
    if args.action == "import-lerobot":
        return _import_lerobot(args.path, args.options)
    if args.action == "export-lerobot":
        return _export_lerobot(args.path, args.options)
    try:
        store = EpisodeStore.open(args.path, mode="r")
    except (FileNotFoundError, ValueError) as e:
        print(f"robot-rl: {e}", file=sys.stderr)
        return 2
    with store:
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
        opts = dict(item.split("=", 1) for item in args.options)
        unknown = sorted(set(opts) - {"episode", "out", "fps"})
        if unknown or "episode" not in opts:
            print("robot-rl: usage: robot-rl data video PATH episode=N [out=episode.mp4] [fps=10]", file=sys.stderr)
            return 2
        index = int(opts["episode"])
        if not 0 <= index < len(store.episodes()):
            print(f"robot-rl: {args.path} has episodes 0..{len(store.episodes()) - 1}, not {index}", file=sys.stderr)
            return 2
        out = opts.get("out", f"episode_{index}.mp4")
        write_video(out, episode_frames(store, index), fps=float(opts.get("fps", 10)))
        print(f"wrote {out}")
        return 0


BAG_OPTIONS = ("out", "rate", "phase", "ee_pose", "joint_states", "command")


def _import_bag(bag: str, options: list[str]) -> int:
    """robot-rl data import-bag BAG out=STORE [rate=HZ phase=F ee_pose=T joint_states=T command=T
    image.<camera>=T] [config overrides: robot=... cameras=... task=...]"""
    from robot_rl.data import EpisodeStore, StoreSpec
    from robot_rl.data.bags import BagError, BagTopics, import_bag
    from robot_rl.env.factory import image_transforms, spaces_from_config
    from robot_rl.env.robot_env import ActionSpec

    pairs = [item.split("=", 1) for item in options if "=" in item]
    opts = {k: v for k, v in pairs if k in BAG_OPTIONS or k.startswith("image.")}
    cfg = load_config([f"{k}={v}" for k, v in pairs if k not in opts])
    if "out" not in opts:
        print("robot-rl: usage: robot-rl data import-bag BAG out=STORE [rate=HZ] [image.<camera>=TOPIC ...] "
              "[robot=... cameras=... task=...]", file=sys.stderr)
        return 2
    images = {name: opts.get(f"image.{name}", f"{name}/image_raw") for name in cfg.cameras}
    topics = BagTopics(images, opts.get("ee_pose", "/ee_pose"), opts.get("joint_states", "/joint_states") or None,
                       opts.get("command", "/target_pose"))
    obs_space, action_dim = spaces_from_config(cfg)
    try:
        rate, phase = float(opts.get("rate", cfg.robot.control_hz)), float(opts.get("phase", 0.25))
    except ValueError as e:
        print(f"robot-rl: rate and phase must be numbers: {e}", file=sys.stderr)
        return 2
    try:
        with EpisodeStore.append_or_create(opts["out"], StoreSpec.from_spaces(obs_space, action_dim)) as store:
            steps = import_bag(bag, store, ActionSpec(**cfg.task.action), image_transforms(cfg),
                               list(cfg.robot.proprio), rate, topics, phase, task=cfg.task.name)
    except BagError as e:
        print(f"robot-rl: {e}", file=sys.stderr)
        return 2
    print(f"imported {bag}: {steps} steps at {opts.get('rate', cfg.robot.control_hz)} Hz into {opts['out']}")
    return 0


def _export_bag(path: str, options: list[str]) -> int:
    """robot-rl data export-bag STORE episode=N out=BAG [storage=mcap|sqlite3 rate=HZ] [config overrides]"""
    from robot_rl.data import EpisodeStore
    from robot_rl.data.bags import BagError, BagTopics, export_bag
    from robot_rl.env.robot_env import ActionSpec

    pairs = [item.split("=", 1) for item in options if "=" in item]
    opts = {k: v for k, v in pairs if k in ("episode", "out", "storage", "rate")}
    cfg = load_config([f"{k}={v}" for k, v in pairs if k not in opts])
    if "out" not in opts or "episode" not in opts:
        print("robot-rl: usage: robot-rl data export-bag STORE episode=N out=BAG [storage=mcap|sqlite3] [rate=HZ] "
              "[robot=... cameras=... task=...]", file=sys.stderr)
        return 2
    try:
        with EpisodeStore.open(path) as store:
            episode = store.load_episode(int(opts["episode"]))
        count = export_bag(episode, opts["out"], ActionSpec(**cfg.task.action), list(cfg.robot.proprio),
                           float(opts.get("rate", cfg.robot.control_hz)),
                           BagTopics({name: f"{name}/image_raw" for name in cfg.cameras}, joint_states=None),
                           opts.get("storage", "mcap"))
    except (BagError, IndexError, ValueError) as e:
        print(f"robot-rl: {e}", file=sys.stderr)
        return 2
    print(f"wrote {opts['out']}: {count} messages")
    return 0


def _import_lerobot(root: str, options: list[str]) -> int:
    """robot-rl data import-lerobot DATASET out=STORE [source=demo] [config overrides: robot=, cameras=, task=]"""
    from robot_rl.data import EpisodeStore, StoreSpec
    from robot_rl.data.lerobot import LeRobotError, check_lerobot, import_lerobot
    from robot_rl.env.factory import image_transforms, spaces_from_config

    pairs = [item.split("=", 1) for item in options if "=" in item]
    opts = {k: v for k, v in pairs if k in ("out", "source")}
    cfg = load_config([f"{k}={v}" for k, v in pairs if k not in opts])
    if "out" not in opts:
        print("robot-rl: usage: robot-rl data import-lerobot DATASET out=STORE [source=demo] "
              "[robot=... cameras=... task=...]", file=sys.stderr)
        return 2
    spec = StoreSpec.from_spaces(*spaces_from_config(cfg))
    try:
        check_lerobot(root, spec)  # before a store is created for it
        with EpisodeStore.append_or_create(opts["out"], spec) as store:
            episodes, steps = import_lerobot(root, store, image_transforms(cfg), opts.get("source", "demo"))
    except LeRobotError as e:
        print(f"robot-rl: {e}", file=sys.stderr)
        return 2
    print(f"imported {root}: {episodes} episodes, {steps} steps into {opts['out']}")
    return 0


def _export_lerobot(path: str, options: list[str]) -> int:
    """robot-rl data export-lerobot STORE out=DATASET [fps=HZ task=TEXT robot_type=NAME]"""
    from robot_rl.data import EpisodeStore
    from robot_rl.data.lerobot import LeRobotError, export_lerobot

    opts = dict(item.split("=", 1) for item in options if "=" in item)
    unknown = sorted(set(opts) - {"out", "fps", "task", "robot_type"})
    if unknown or "out" not in opts:
        print("robot-rl: usage: robot-rl data export-lerobot STORE out=DATASET [fps=10] [task=TEXT] "
              "[robot_type=NAME]", file=sys.stderr)
        return 2
    try:
        with EpisodeStore.open(path) as store:
            frames = export_lerobot(store, opts["out"], float(opts.get("fps", 10)), opts.get("task"),
                                    opts.get("robot_type"))
    except (LeRobotError, FileNotFoundError, ValueError) as e:
        print(f"robot-rl: {e}", file=sys.stderr)
        return 2
    print(f"wrote {opts['out']}: {frames} frames")
    return 0


def _setup_logging() -> None:
    from robot_rl.logs import setup_logging

    setup_logging()


def _curve_table(curve: list[tuple[int, float]]) -> str:
    from robot_rl.report import format_table

    return format_table(["env steps", "eval success"], [[steps, f"{success:.0%}"] for steps, success in curve])


def cmd_train(overrides: list[str]) -> int:
    """Train on the robot (the simulated arm by default): learner and actor as two processes."""
    from robot_rl.rl.processes import train_two_processes
    from robot_rl.rl.train import train_in_process

    cfg = load_config(overrides, name="train")
    if cfg.init:
        checkpoint_file(cfg.init)  # a wrong path fails now, not in the learner process
    run_dir = _run_dir(cfg, "train")
    _setup_logging()
    if cfg.train.processes == 1:
        report = train_in_process(cfg, run_dir, cfg.logging.progress_bar)
    else:
        report = train_two_processes(cfg, overrides, run_dir, cfg.logging.progress_bar)
    print(f"task={cfg.task.name} env_steps={report.env_steps} episodes={report.episodes} "
          f"policy_weights=v{report.weights_version} wall={report.wall_s:.0f}s")
    print(_curve_table(report.curve))
    timing = report.timing
    if timing is not None:
        print(f"actor loop: inference p50 {timing.inference_ms_p50:.1f} ms, p99 {timing.inference_ms_p99:.1f} ms"
              + (f"; period error p99 {timing.period_error_ms_p99:.2f} ms" if timing.samples else ""))
    (run_dir / "curve.txt").write_text(_curve_table(report.curve) + "\n")
    print(f"run folder (config, replay, checkpoint): {run_dir}")
    return 0


def cmd_offline(overrides: list[str]) -> int:
    """Train a policy from recordings alone (data=PATH[,PATH...]): offline.method=calql|bc."""
    from robot_rl.report import format_table
    from robot_rl.rl.offline import train_offline

    cfg = load_config(overrides, name="train")
    run_dir = _run_dir(cfg, "offline")
    _setup_logging()
    report = train_offline(cfg, run_dir, cfg.logging.progress_bar)
    print(f"offline {cfg.offline.method}: {report.episodes} episodes, {report.transitions} transitions, "
          f"{report.updates} updates, wall={report.wall_s:.0f}s")
    if report.curve:
        print(format_table(["updates", "eval success"], [[u, f"{s:.0%}"] for u, s in report.curve]))
    print(f"checkpoint: {report.checkpoint}")
    print(f"fine-tune on the robot: robot-rl train init={run_dir} data={cfg.data}")
    return 0


def cmd_learner(overrides: list[str]) -> int:
    """Run the learner: serve actors over gRPC, train, publish weights, checkpoint."""
    from robot_rl.rl.processes import run_learner

    cfg = load_config(overrides, name="train")
    _setup_logging()
    run_learner(cfg, _run_dir(cfg, "learner"))
    return 0


def cmd_actor(overrides: list[str]) -> int:
    """Run an actor: act on the robot, record locally, stream to the learner at learner.address."""
    from robot_rl.rl.processes import SUPERVISED_ENV, run_actor, write_report

    cfg = load_config(overrides, name="train")
    _setup_logging()
    actor_id = cfg.train.actor_id or f"{socket.gethostname()}-{os.getpid()}"  # unique among a learner's actors
    print(f"actor id: {actor_id} (train.actor_id)", file=sys.stderr)
    run_dir = _run_dir(cfg, "actor")
    report = run_actor(cfg, run_dir, cfg.logging.progress_bar, actor_id=actor_id)
    write_report(report, run_dir, actor_id)
    if SUPERVISED_ENV not in os.environ:  # under robot-rl train, train prints the summary
        print(_curve_table(report.curve))
        print(f"actor loop: {report.timing}")
    return 0


def cmd_eval(overrides: list[str]) -> int:
    """Evaluate a checkpoint (checkpoint=PATH, a file or run folder): per-episode table, optional video."""
    import torch

    from robot_rl.env.factory import make_env
    from robot_rl.rl.train import make_agent
    from robot_rl.rollout import FunctionPolicy, results_table, rollout

    cfg = load_config(overrides, name="train")
    if not cfg.checkpoint:
        raise ConfigError("invalid value for 'checkpoint': give the checkpoint to evaluate, checkpoint=PATH")
    path = checkpoint_file(cfg.checkpoint)
    env = make_env(cfg, render_mode="rgb_array" if cfg.video else None)
    try:
        agent = make_agent(cfg, env, torch.device("cpu"))
        load_agent_state(agent, load_checkpoint(path)["agent"], path)
        policy = FunctionPolicy(lambda obs: agent.act(obs, deterministic=True))
        run_dir = _run_dir(cfg, "eval")
        results = rollout(env, policy, cfg.episodes, cfg.seed + 100_000, cfg.video, cfg.logging.progress_bar)
    finally:
        env.close()
    table = results_table(results)
    (run_dir / "episodes.txt").write_text(table + "\n")
    print(f"checkpoint={path} task={cfg.task.name}")
    print(table)
    return 0


def cmd_record(overrides: list[str]) -> int:
    """Record teleoperated demonstrations (teleop=keyboard|spacemouse|gamepad|sim_expert) into record=PATH."""
    from robot_rl.rl.processes import record_teleop
    from robot_rl.rollout import EpisodeResult, results_table

    cfg = load_config(overrides, name="train")
    path = Path(cfg.record) if cfg.record else _run_dir(cfg, "record") / "demos.zarr"
    episodes = record_teleop(cfg, path)
    print(results_table([EpisodeResult(e.episode, cfg.seed + e.episode, e.steps, e.success, e.episode_return)
                         for e in episodes]))
    print(f"recorded {len(episodes)} demonstrations to {path}")
    return 0


def cmd_critic(args: argparse.Namespace) -> int:
    """Train a critic on recordings, or judge one on them (VOC, F1, AUROC, latency; a PNG of curves)."""
    from robot_rl.critics.evaluate import evaluate_critic, train_critic
    from robot_rl.report import print_report

    cfg = load_config(args.overrides, name="train")
    run_dir = _run_dir(cfg, f"critic_{args.action}")
    if args.action == "train":
        path, summary = train_critic(cfg, run_dir)
        print_report(f"critic train: {cfg.critic.name} on {cfg.data} → {path}", ["figure", "value"],
                     [[k, v] for k, v in summary.items()], summary, args.json)
        return 0
    rows, summary = evaluate_critic(cfg, run_dir / "progress_curves.png")
    print_report(f"critic eval: {cfg.critic.name} ({cfg.critic.path}) on {cfg.data}; curves: {summary['png']}",
                 ["figure", "value"], rows, summary, args.json)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Calibrate the rig: camera intrinsics, hand-eye, a guided pose sequence, workspace bounds."""
    import json

    from robot_rl.calibration.board import CalibrationError
    from robot_rl.calibration.procedures import PROCEDURES

    cfg = load_config(args.overrides, name="calibrate")
    try:
        summary = PROCEDURES[args.action](cfg)
    except CalibrationError as e:
        print(f"robot-rl: calibration failed: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


COMMANDS = {"rollout": cmd_rollout, "record": cmd_record, "train": cmd_train, "offline": cmd_offline,
            "learner": cmd_learner, "actor": cmd_actor, "eval": cmd_eval}


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
    critic = sub.add_parser("critic", help=cmd_critic.__doc__.splitlines()[0], description=cmd_critic.__doc__,
                            epilog="example: robot-rl critic train critic.name=learned_progress task=pick_cube "
                                   "data=runs/demos.zarr out=progress.pt; robot-rl critic eval "
                                   "critic.name=learned_progress critic.path=progress.pt data=runs/held_out.zarr")
    critic.add_argument("action", choices=["train", "eval"])
    critic.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    critic.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (critic.*, data, out)")
    calibrate = sub.add_parser("calibrate", help=cmd_calibrate.__doc__.splitlines()[0],
                               description=cmd_calibrate.__doc__ + " Options: see config/calibrate.yaml.",
                               epilog="example: robot-rl calibrate handeye calibrate.rig=lab1 calibrate.source=files "
                                      "calibrate.images=shots/ calibrate.poses=rigs/lab1/handeye_poses.yaml")
    calibrate.add_argument("action", choices=["intrinsics", "handeye", "poses", "workspace"])
    calibrate.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (calibrate.*)")
    argv = list(sys.argv[1:] if argv is None else argv)
    # argparse cannot take an option between a subcommand's positional lists: read --json anywhere
    as_json = argv[:1] == ["critic"] and "--json" in argv
    args = parser.parse_args([a for a in argv if not (as_json and a == "--json")])
    if as_json:
        args.json = True
    try:
        if args.command == "data":
            return cmd_data(args)
        if args.command == "calibrate":
            return cmd_calibrate(args)
        if args.command == "critic":
            return cmd_critic(args)
        return COMMANDS[args.command](args.overrides)
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


if __name__ == "__main__":
    sys.exit(main())
