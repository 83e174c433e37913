"""``robot-rl train``, the two ways: actor and learner in one process in lockstep, or as two
supervised child processes (``robot-rl learner`` and ``robot-rl actor``) on loopback."""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from robot_rl.env.robot_env import RobotEnv
from robot_rl.intervention.factory import CONSOLE_TOKEN_ENV, with_operator
from robot_rl.rewards.training import relabeler_for, with_reward_model
from robot_rl.rl.actor import Actor
from robot_rl.rl.actor_process import SUPERVISED_ENV, read_report, report_file
from robot_rl.rl.assembly import (
    DEMO_STORE,
    Progress,
    RandomWarmup,
    TrainReport,
    demo_sources,
    evaluate,
    make_learner,
    random_steps,
    record_demos,
)
from robot_rl.rl.learner import Learner
from robot_rl.rl.learner_process import LEARNER_INFO, TOKEN_ENV, learner_port
from robot_rl.rl.run_log import WandbLog
from robot_rl.rl.supervisor import RunFailed, Supervised
from robot_rl.robots import make_env


def train_in_process(cfg: DictConfig, run_dir: Path, progress_bar: bool = True) -> TrainReport:
    """Actor and learner in one process, in lockstep: after each env step the learner makes
    the updates it owes (``utd_ratio`` per step). Deterministic for a seed on a CPU."""
    started = time.perf_counter()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    if cfg.train.demos:
        record_demos(cfg, run_dir / DEMO_STORE, cfg.train.demos)
    env, eval_env = with_reward_model(make_env(cfg), cfg), make_env(cfg)
    acting_env, console = with_operator(env, cfg)
    wandb_log = WandbLog(cfg, run_dir, "train")
    learner = make_learner(cfg, env, run_dir / "learner", demo_sources(cfg, run_dir), log_metrics=wandb_log.log,
                           relabeler=relabeler_for(cfg))
    policy = RandomWarmup(learner.agent, max(0, random_steps(cfg) - learner.env_steps), env.action_space, cfg.seed)
    actor = Actor(acting_env, policy, send=lambda record: learner.ingest("local", [record]), seed=cfg.seed,
                  console=console)
    actor.total_steps = learner.env_steps
    report = TrainReport()
    progress = Progress(cfg, actor.total_steps, wandb_log, console, progress_bar)
    try:
        train_in_lockstep(cfg, actor, learner, eval_env, progress, report)
    finally:
        progress.close()
        wandb_log.close()
        learner.close()
        if console is not None:
            console.close()
        env.close()
        eval_env.close()
    report.env_steps, report.updates, report.episodes = actor.total_steps, learner.agent.updates, len(actor.episodes)
    report.weights_version = learner.weights_version
    report.intervention_steps = sum(e.interventions for e in actor.episodes)
    report.timing = actor.timing.summary()
    report.wall_s = time.perf_counter() - started
    return report


def train_in_lockstep(cfg: DictConfig, actor: Actor, learner: Learner, eval_env: RobotEnv, progress: Progress,
                      report: TrainReport) -> None:
    """One env step, then the updates it owes; an evaluation every ``train.eval_every`` steps
    (stopping early at ``train.stop_at``); a checkpoint at the end."""
    metrics: dict[str, float] = {}
    while actor.total_steps < cfg.train.env_steps:
        actor.step()
        progress.bar.update(1)
        for _ in range(learner.updates_due()):
            metrics = learner.update()
        if actor.total_steps % cfg.train.eval_every == 0 or actor.total_steps == cfg.train.env_steps:
            success = evaluate(learner.agent, eval_env, cfg.train.eval_episodes)
            progress.evaluated(report, actor, success, updates=learner.agent.updates,
                               q=round(metrics.get("q", float("nan")), 2),
                               critic_loss=round(metrics.get("critic_loss", float("nan")), 4))
            if cfg.train.stop_at is not None and success >= cfg.train.stop_at:
                break
    if learner.run_dir is not None:
        learner.checkpoint()


def train_two_processes(cfg: DictConfig, overrides: list[str], run_dir: Path, progress_bar: bool = True) -> TrainReport:
    """The learner and the actor as two child processes on loopback (composed from the same
    ``overrides``), each restarted when it dies: the learner from its checkpoint and replay
    store on the port the actor dials, the actor from its store (its budget is the run's
    total), up to ``train.restarts`` times each with backoff. Past that, :class:`RunFailed`."""
    if cfg.train.demos:
        record_demos(cfg, run_dir / DEMO_STORE, cfg.train.demos)
    token = cfg.learner.token or os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)
    # one console key for the run, so a restarted actor's console opens with the URL printed first
    console_key = cfg.console.token or os.environ.get(CONSOLE_TOKEN_ENV) or secrets.token_urlsafe(32)
    env = {**os.environ, TOKEN_ENV: token, CONSOLE_TOKEN_ENV: console_key, SUPERVISED_ENV: "1"}
    actor_id = cfg.train.actor_id or "actor-0"
    (run_dir / LEARNER_INFO).unlink(missing_ok=True)
    (run_dir / report_file(actor_id)).unlink(missing_ok=True)
    port = 0  # the first learner picks one; a restarted learner listens on the same

    def command(job: str, *more: str) -> list[str]:
        return [sys.executable, "-m", "robot_rl.cli", job, *overrides, f"learner.address=127.0.0.1:{port}",
                f"run_dir={run_dir}", *more]

    learner = Supervised("learner", lambda: command("learner"), run_dir / "learner.log", env, cfg.train.restarts)
    actor = Supervised("actor", lambda: command("actor", f"train.actor_id={actor_id}",
                                               f"logging.progress_bar={str(progress_bar).lower()}"),
                       run_dir / "actor.log", env, cfg.train.restarts, output_to_log=False)
    try:
        learner.start()
        port = learner_port(run_dir, 120, learner)
        actor.start()
        while actor.wait(0.5) is None and actor.pid is not None:
            if learner.failure:
                raise RunFailed(learner.failure)
        if actor.failure:
            raise RunFailed(actor.failure)
        return read_report(run_dir, actor_id)
    finally:
        try:
            actor.stop()
        finally:
            learner.stop()  # whatever happened to the actor, no learner is left behind
