"""The learner and actor programs (`robot-rl learner`, `robot-rl actor`) and `robot-rl train`,
which runs them as two processes on this machine.

The learner listens on ``learner.address`` and writes ``learner.json`` (its port) into its
run folder once it serves. Both sides need the same token: ``learner.token`` or the
``ROBOT_RL_TOKEN`` environment variable (train makes a fresh one and passes it on).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from robot_rl.config import ConfigError
from robot_rl.critics.training import relabeler_for, with_critic
from robot_rl.env.factory import spaces_from_config
from robot_rl.env.robot_env import RobotEnv
from robot_rl.files import atomic_write_text
from robot_rl.intervention.factory import CONSOLE_TOKEN_ENV, with_operator
from robot_rl.rl.actor import Actor, EpisodeSummary
from robot_rl.rl.learner import Learner
from robot_rl.rl.pacing import TimingSummary
from robot_rl.rl.records import BEGIN
from robot_rl.rl.run_log import WandbLog
from robot_rl.rl.supervisor import RunFailed, Supervised, wait_for_file
from robot_rl.rl.train import (
    DEMO_STORE,
    RandomWarmup,
    TrainReport,
    agent_for,
    config_section,
    demo_sources,
    evaluate,
    make_agent,
    pick_device,
    random_steps,
    record_demos,
)
from robot_rl.robots import make_env
from robot_rl.schema.training import LearnerConfig
from robot_rl.teleop.device import TeleopDevice

log = logging.getLogger("robot_rl.processes")

TOKEN_ENV = "ROBOT_RL_TOKEN"
LEARNER_INFO = "learner.json"
CURVE = "curve.json"


class Outage:
    """Logs a failure that repeats (the learner away) once when it starts, then a summary at most
    every ``every_s`` seconds, and once when it ends; never a line per attempt."""

    def __init__(self, what: str, every_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.what, self.every_s, self.clock = what, every_s, clock
        self.since: float | None = None
        self.failures = 0
        self._logged = 0.0

    def failed(self, error: object, state: str) -> None:
        now = self.clock()
        self.failures += 1
        if self.since is None:
            self.since, self._logged = now, now
            log.warning("%s (learner unreachable: %s); %s", self.what, error, state)
        elif now - self._logged >= self.every_s:
            self._logged = now
            log.warning("%s for %.0f s (%d attempts failed); %s", self.what, now - self.since, self.failures, state)

    def ended(self) -> None:
        if self.since is not None:
            log.info("learner reachable again after %.0f s", self.clock() - self.since)
            self.since, self.failures = None, 0


def resolve_token(cfg: DictConfig) -> str:
    token = cfg.learner.token or os.environ.get(TOKEN_ENV)
    if not token:
        raise ConfigError(f"invalid value for 'learner.token': no token; set learner.token or ${TOKEN_ENV} "
                          f"(the same on learner and actors)")
    return token


def _tls(cfg: DictConfig):
    from robot_rl.transport.server import TLSConfig

    tls = cfg.learner.tls
    return TLSConfig(tls.cert, tls.key, tls.ca) if (tls.cert or tls.ca) else None


# ---------------------------------------------------------------------- learner
def run_learner(cfg: DictConfig, run_dir: Path, stop: threading.Event | None = None) -> Learner:
    """Serve actors and train until ``stop`` is set (or SIGTERM/SIGINT); checkpoint on the way out."""
    from robot_rl.data import StoreSpec
    from robot_rl.transport.server import LearnerServer

    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    if cfg.train.threads:
        import torch

        torch.set_num_threads(cfg.train.threads)
    obs_space, action_dim = spaces_from_config(cfg)
    agent = agent_for(cfg, obs_space, action_dim, pick_device(cfg.learner.device))
    demos = demo_sources(cfg, run_dir)
    wandb_log = WandbLog(cfg, run_dir, "learner")
    learner = Learner(agent, StoreSpec.from_spaces(obs_space, action_dim),
                      LearnerConfig(**config_section(cfg.learner, LearnerConfig)), run_dir / "learner", demos,
                      seed=cfg.seed, log_metrics=wandb_log.log, relabeler=relabeler_for(cfg), init=cfg.init)
    server = LearnerServer(cfg.learner.address, resolve_token(cfg), learner.ingest, tls=_tls(cfg))
    learner.publish_fn = server.publish_weights
    server.start()
    learner.publish()  # actors can start acting with the initial (or restored) policy
    info = {"port": server.port, "pid": os.getpid(), "updates": agent.updates}
    (run_dir / LEARNER_INFO).write_text(json.dumps(info))
    log.info("learner serving on port %d (updates so far %d, env steps %d)", server.port, agent.updates,
             learner.env_steps)
    last_log, last_updates = time.monotonic(), agent.updates
    try:
        while not stop.is_set():
            if learner.updates_due() > 0:
                metrics = learner.update()
                now = time.monotonic()
                if now - last_log > 10:
                    rate = (agent.updates - last_updates) / (now - last_log)
                    recent = learner.successes[-20:]
                    log.info("learner: env steps %d, episodes %d, success %.0f%%, updates %d (%.1f/s), "
                             "critic loss %.3f, q %.2f", learner.env_steps, learner.episodes_received,
                             100 * np.mean(recent) if recent else 0.0, agent.updates, rate,
                             metrics["critic_loss"], metrics["q"])
                    last_log, last_updates = now, agent.updates
            else:
                stop.wait(0.005)
    finally:
        server.stop(grace=1.0)
        learner.checkpoint()
        learner.close()
        wandb_log.close()
        log.info("learner stopped at update %d; checkpoint in %s", agent.updates, learner.run_dir)
    return learner


# ---------------------------------------------------------------------- actor
def learner_address(cfg: DictConfig, run_dir: Path, wait_s: float = 120.0) -> str:
    """``learner.address``; a port of 0 means: read the port the local learner wrote."""
    host, port = cfg.learner.address.rsplit(":", 1)
    if port != "0":
        return cfg.learner.address
    wait_for_file(run_dir / LEARNER_INFO, wait_s, "learner")
    return f"{host}:{json.loads((run_dir / LEARNER_INFO).read_text())['port']}"


def run_actor(cfg: DictConfig, run_dir: Path, progress_bar: bool = True, actor_id: str | None = None,
              env_factory: Callable[[DictConfig], RobotEnv] = make_env, device: TeleopDevice | None = None,
              stop: threading.Event | None = None) -> TrainReport:
    """Act until run_dir/<actor_id>.zarr holds ``train.env_steps`` steps (or until ``stop``),
    streaming to the learner: a rerun in the same run folder continues to that total.
    ``actor_id``: the argument, else ``train.actor_id``, else actor-0.

    In sim the current policy is evaluated every ``train.eval_every`` steps on a second env.
    On hardware (``env_factory`` builds the robot's env, ``device`` is the operator's) there
    is no ground truth to evaluate against: the operator's labels make the success rate.
    """
    import torch

    from robot_rl.data import EpisodeStore, StoreSpec
    from robot_rl.transport.client import LearnerClient, StepStreamer
    from robot_rl.transport.errors import TransportError

    started = time.perf_counter()
    # one observation at a time gains nothing from more threads, and they would compete
    # with the learner's when both run on one machine
    torch.set_num_threads(cfg.train.threads or 1)
    simulated = cfg.robot.backend == "sim"
    env = with_critic(env_factory(cfg), cfg)
    eval_env = env_factory(cfg) if simulated and cfg.train.eval_every > 0 else None
    acting_env, console = with_operator(env, cfg, device=device)
    agent = make_agent(cfg, env, "cpu")
    actor_id = actor_id or cfg.train.actor_id or "actor-0"
    client = LearnerClient(learner_address(cfg, run_dir), resolve_token(cfg), actor_id, tls=_tls(cfg))
    # past train.backlog_mb in RAM, steps wait in a file beside the store until the learner is back
    streamer = StepStreamer(client, max_pending_bytes=cfg.train.backlog_mb << 20,
                            spill_path=run_dir / f"{actor_id}.backlog")
    spec = StoreSpec.from_spaces(env.observation_space, env.action_space.shape[0])
    store = EpisodeStore.append_or_create(run_dir / f"{actor_id}.zarr", spec)
    done_before = store.num_steps
    log.info("actor %s: %s", actor_id, f"resuming at {done_before} of {cfg.train.env_steps} env steps"
             if done_before else f"{cfg.train.env_steps} env steps to go")
    version = 0
    lead = cfg.learner.warmup_transitions + 2 * cfg.learner.publish_every
    outage = Outage("no new weights from the learner")

    def refresh() -> bool:
        nonlocal version
        try:
            fetched = client.fetch_weights(version)
        except TransportError as e:
            outage.failed(e, f"acting with version {version}, {streamer.pending} steps queued")
            return False
        outage.ended()
        if fetched is None:
            return False
        version, arrays = fetched
        agent.load_policy_arrays(arrays)
        return True

    stop = stop or threading.Event()

    def wait_for_learner(steps: int) -> None:
        """In sim, keep the actor from running ahead of the learner's update-to-data ratio."""
        while steps * cfg.learner.utd_ratio > version * cfg.learner.publish_every + lead and not stop.is_set():
            if not refresh():
                time.sleep(0.02)

    if cfg.init:  # the policy to start from comes from the learner: never act with random weights instead
        deadline = time.monotonic() + 120
        while not refresh():
            if time.monotonic() > deadline:
                raise RuntimeError("no policy weights from the learner within 120 s; with init= the actor "
                                   "does not act before it has the policy it starts from")
            time.sleep(0.5)
    wandb_log = WandbLog(cfg, run_dir, "actor")
    policy = RandomWarmup(agent, max(0, random_steps(cfg) - done_before), env.action_space, cfg.seed + done_before)
    # the simulator runs as fast as it can unless told otherwise; a real robot runs at its control rate
    rate_hz = cfg.train.rate_hz or (None if simulated else cfg.robot.control_hz)
    actor = Actor(acting_env, policy, send=lambda record: streamer.put(record, int(record["event"]) == BEGIN),
                  store=store, rate_hz=rate_hz, refresh_weights=refresh,
                  weights_every_steps=cfg.train.weights_every_steps, seed=cfg.seed + len(store.episodes()),
                  console=console)
    actor.total_steps = done_before
    report = TrainReport()
    bar = tqdm(total=cfg.train.env_steps, initial=done_before, unit="step", disable=not progress_bar,
               dynamic_ncols=True)
    next_eval = (done_before // cfg.train.eval_every + 1) * cfg.train.eval_every if cfg.train.eval_every > 0 else 0
    try:
        while actor.total_steps < cfg.train.env_steps and not stop.is_set():
            if streamer.superseded:
                raise RunFailed(f"actor {actor_id}: {streamer.superseded}")
            if simulated and not actor.in_episode:
                wait_for_learner(actor.total_steps)
            actor.step()
            bar.update(1)
            if eval_env is None:
                if actor.episodes and actor.total_steps % 100 == 0:
                    recent = [e.success for e in actor.episodes[-20:]]
                    wandb_log.log({"train_success": np.mean(recent), "weights_version": version}, actor.total_steps)
            elif actor.total_steps >= next_eval or actor.total_steps == cfg.train.env_steps:
                next_eval += cfg.train.eval_every
                refresh()
                success = evaluate(agent, eval_env, cfg.train.eval_episodes)
                report.curve.append((actor.total_steps, success))
                (run_dir / CURVE).write_text(json.dumps(report.curve))
                recent = [e.success for e in actor.episodes[-20:]]
                wandb_log.log({"eval_success": success, "train_success": np.mean(recent) if recent else None,
                               "weights_version": version}, actor.total_steps)
                bar.set_postfix(eval=f"{success:.0%}", train=f"{np.mean(recent) if recent else 0:.0%}",
                                weights=version, queued=streamer.pending)
                if console is not None:
                    console.set_learner_stats(weights=version, eval_success=f"{success:.0%}")
        # a finished run waits for the learner to have every step; a stopped one (a signal) does not
        # wait on a learner that may be gone: its steps are in the actor's store
        streamer.flush(timeout=1.0 if stop.is_set() else 30.0)
    finally:
        bar.close()
        wandb_log.close()
        if console is not None:
            console.close()
        streamer.close()
        client.close()
        store.close()
        env.close()
        if eval_env is not None:
            eval_env.close()
    report.env_steps, report.episodes, report.weights_version = actor.total_steps, len(actor.episodes), version
    report.timing = actor.timing.summary()
    log.info("actor loop: %s", report.timing)
    report.train_success = float(np.mean([e.success for e in actor.episodes])) if actor.episodes else float("nan")
    report.wall_s = time.perf_counter() - started
    return report


# ---------------------------------------------------------------------- record
def record_teleop(cfg: DictConfig, path: Path, env_factory: Callable[[DictConfig], RobotEnv] = make_env,
                  device: TeleopDevice | None = None) -> list[EpisodeSummary]:
    """Record ``cfg.episodes`` teleoperated demonstrations (every step the operator's) into the
    EpisodeStore at ``path`` (appended to, or created), labels included."""
    from robot_rl.data import EpisodeStore, StoreSpec
    from robot_rl.rl.rollout import FunctionPolicy

    if cfg.teleop.device == "none" and device is None and not cfg.console.enabled:
        raise ConfigError("invalid value for 'teleop': recording needs an operator: teleop=keyboard, spacemouse, "
                          "gamepad or sim_expert")
    env = env_factory(cfg)
    console = store = None
    try:
        acting, console = with_operator(env, cfg, operator_only=True, device=device)
        store = EpisodeStore.append_or_create(path, StoreSpec.from_spaces(env.observation_space,
                                                                          env.action_space.shape[0]))
        hold = FunctionPolicy(lambda obs: np.zeros(env.action_space.shape, np.float32))
        # a person needs the robot's real pace; the simulated operator does not
        rate = None if cfg.teleop.device == "sim_expert" else cfg.robot.control_hz
        actor = Actor(acting, hold, store=store, rate_hz=rate, source="demo", seed=cfg.seed, console=console)
        return actor.run(max_episodes=cfg.episodes)
    finally:
        if store is not None:
            store.close()
        if console is not None:
            console.close()
        env.close()


# ---------------------------------------------------------------------- train
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
        wait_for_file(run_dir / LEARNER_INFO, 120, "learner", learner)
        port = json.loads((run_dir / LEARNER_INFO).read_text())["port"]
        actor.start()
        while actor.wait(0.5) is None and actor.pid is not None:
            if learner.failure:
                raise RunFailed(learner.failure)
        if actor.failure:
            raise RunFailed(actor.failure)
        return read_report(run_dir, actor_id)
    finally:
        actor.stop()
        learner.stop()


SUPERVISED_ENV = "ROBOT_RL_SUPERVISED"  # set in the children of train: they leave the summary to train


def report_file(actor_id: str) -> str:
    return f"{actor_id}.report.json"


def write_report(report: TrainReport, run_dir: Path, actor_id: str) -> None:
    atomic_write_text(run_dir / report_file(actor_id), json.dumps(asdict(report)))


def read_report(run_dir: Path, actor_id: str) -> TrainReport:
    data = json.loads((run_dir / report_file(actor_id)).read_text())
    timing = TimingSummary(**data.pop("timing")) if data.get("timing") else None
    curves = {name: [tuple(point) for point in data.get(name, [])] for name in ("curve", "intervention_curve")}
    return TrainReport(**{**data, **curves, "timing": timing})
