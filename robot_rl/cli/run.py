"""The ``robot-rl`` commands that run from a config (``key=value`` overrides): rollout, record,
train, offline, learner, actor, eval, reward-model and calibrate. Each writes its redacted config
into its run folder, where it has one."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from datetime import datetime
from pathlib import Path

from robot_rl.config import ConfigError
from robot_rl.rl.checkpoints import checkpoint_file, load_agent_state, load_checkpoint
from robot_rl.schema import load_config
from robot_rl.secrets import redacted_yaml


def _run_dir(cfg, command: str) -> Path:
    path = Path(cfg.run_dir) if cfg.run_dir else Path("runs") / command / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(redacted_yaml(cfg))  # secrets (learner.token, ...) as <redacted>
    return path


def cmd_rollout(overrides: list[str]) -> int:
    """Run a policy (expert or random) for some episodes and print a per-episode table."""
    from robot_rl.data import EpisodeStore, StoreSpec
    from robot_rl.rl.rollout import make_policy, results_table, rollout
    from robot_rl.robots import make_env

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


def _setup_logging() -> None:
    from robot_rl.logs import setup_logging

    setup_logging()


def _curve_table(curve: list[tuple[int, float]]) -> str:
    from robot_rl.report import format_table

    return format_table(["env steps", "eval success"], [[steps, f"{success:.0%}"] for steps, success in curve])


def cmd_train(overrides: list[str]) -> int:
    """Train on the robot (the simulated arm by default): learner and actor as two processes."""
    from robot_rl.rl.train import train_in_process, train_two_processes

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
    from robot_rl.rl.learner_process import run_learner

    cfg = load_config(overrides, name="train")
    _setup_logging()
    run_learner(cfg, _run_dir(cfg, "learner"))
    return 0


def cmd_actor(overrides: list[str]) -> int:
    """Run an actor: act on the robot, record locally, stream to the learner at learner.address."""
    from robot_rl.rl.actor_process import SUPERVISED_ENV, run_actor, write_report

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

    from robot_rl.rl.assembly import make_agent
    from robot_rl.rl.rollout import FunctionPolicy, results_table, rollout
    from robot_rl.robots import make_env

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
    from robot_rl.rl.rollout import EpisodeResult, record_teleop, results_table

    cfg = load_config(overrides, name="train")
    path = Path(cfg.record) if cfg.record else _run_dir(cfg, "record") / "demos.zarr"
    episodes = record_teleop(cfg, path)
    print(results_table([EpisodeResult(e.episode, cfg.seed + e.episode, e.steps, e.success, e.episode_return)
                         for e in episodes]))
    print(f"recorded {len(episodes)} demonstrations to {path}")
    return 0


def cmd_reward_model(args: argparse.Namespace) -> int:
    """Train a reward model on recordings, or judge one on them (VOC, F1, AUROC, latency; a PNG of curves)."""
    from robot_rl.report import print_report
    from robot_rl.rewards.evaluate import evaluate_reward_model, train_reward_model

    cfg = load_config(args.overrides, name="train")
    run_dir = _run_dir(cfg, f"reward_model_{args.action}")
    if args.action == "train":
        path, summary = train_reward_model(cfg, run_dir)
        print_report(f"reward-model train: {cfg.reward_model.name} on {cfg.data} → {path}", ["figure", "value"],
                     [[k, v] for k, v in summary.items()], summary, args.json)
        return 0
    rows, summary = evaluate_reward_model(cfg, run_dir / "progress_curves.png")
    print_report(f"reward-model eval: {cfg.reward_model.name} ({cfg.reward_model.path}) on {cfg.data}; "
                 f"curves: {summary['png']}",
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
