"""The actor program (``robot-rl actor``): acts on the robot with the learner's newest policy,
records every step in its own EpisodeStore and streams it to the learner.

It is composed of four parts, each built and closed on its own: the env stack (the robot's
env with its reward model, the operator's devices and console, a second env to evaluate
on in sim), the policy source (the learner: weights in, steps out), the actor's store, and
the loop, which reports what it did in a :class:`TrainReport`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from robot_rl.env.robot_env import RobotEnv
from robot_rl.files import atomic_write_text
from robot_rl.intervention.factory import with_operator
from robot_rl.rewards.training import with_reward_model
from robot_rl.rl.actor import Actor
from robot_rl.rl.agent import SACAgent
from robot_rl.rl.assembly import Progress, RandomWarmup, TrainReport, evaluate, make_agent, random_steps
from robot_rl.rl.learner_process import learner_address, resolve_token, tls_config
from robot_rl.rl.pacing import TimingSummary
from robot_rl.rl.records import BEGIN
from robot_rl.rl.run_log import WandbLog
from robot_rl.rl.supervisor import RunFailed
from robot_rl.robots import make_env
from robot_rl.teleop.device import TeleopDevice

log = logging.getLogger("robot_rl.actor")

CURVE = "curve.json"
SUPERVISED_ENV = "ROBOT_RL_SUPERVISED"  # set in the children of train: they leave the summary to train
FIRST_WEIGHTS_S = 120.0  # with init=: how long the actor waits for the policy it starts from


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

    started = time.perf_counter()
    # one observation at a time gains nothing from more threads, and they would compete
    # with the learner's when both run on one machine
    torch.set_num_threads(cfg.train.threads or 1)
    actor_id = actor_id or cfg.train.actor_id or "actor-0"
    stop = stop or threading.Event()
    with ExitStack() as closing:
        envs = closing.enter_context(ActorEnvs.build(cfg, env_factory, device))
        agent = make_agent(cfg, envs.env, "cpu")
        store = open_store(run_dir, actor_id, envs.env)
        closing.callback(store.close)
        learner = closing.enter_context(PolicySource.connect(cfg, run_dir, actor_id, agent))
        log.info("actor %s: %s", actor_id, f"resuming at {store.num_steps} of {cfg.train.env_steps} env steps"
                 if store.num_steps else f"{cfg.train.env_steps} env steps to go")
        if cfg.init:  # the policy to start from comes from the learner: never act with random weights instead
            learner.wait_for_first_weights(FIRST_WEIGHTS_S)
        actor = make_actor(cfg, envs, learner, store)
        report = TrainReport()
        wandb_log = WandbLog(cfg, run_dir, "actor")
        closing.callback(wandb_log.close)
        progress = Progress(cfg, actor.total_steps, wandb_log, envs.console, progress_bar, run_dir / CURVE)
        closing.callback(progress.close)
        act(cfg, actor, learner, envs, progress, report, stop)
    return finish_report(report, actor, learner.version, started)


@dataclass
class ActorEnvs:
    """The env stack: the robot's env (rewards from ``reward_model``), the same with the
    operator's devices and console on top (what the actor acts on), and in sim a second env
    for evaluation."""

    env: RobotEnv
    acting: Any
    console: Any
    eval_env: RobotEnv | None
    simulated: bool

    @classmethod
    def build(cls, cfg: DictConfig, env_factory: Callable[[DictConfig], RobotEnv],
              device: TeleopDevice | None) -> ActorEnvs:
        simulated = cfg.robot.backend == "sim"
        env = with_reward_model(env_factory(cfg), cfg)
        eval_env = env_factory(cfg) if simulated and cfg.train.eval_every > 0 else None
        acting, console = with_operator(env, cfg, device=device)
        return cls(env, acting, console, eval_env, simulated)

    def __enter__(self) -> ActorEnvs:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.console is not None:
            self.console.close()
        self.env.close()
        if self.eval_env is not None:
            self.eval_env.close()


class PolicySource:
    """The learner as the actor sees it: newest policy weights in (loaded into ``agent``),
    steps out through a :class:`StepStreamer` that holds ``train.backlog_mb`` in RAM, then
    spills to a file beside the store until the learner is back."""

    def __init__(self, cfg: DictConfig, actor_id: str, client: Any, streamer: Any, agent: SACAgent):
        from robot_rl.transport.errors import TransportError

        self.actor_id, self.client, self.streamer, self.agent = actor_id, client, streamer, agent
        self.version = 0
        self.outage = Outage("no new weights from the learner")
        self.transport_error = TransportError
        # in sim the actor stays within this many steps ahead of the learner's update-to-data ratio
        self.utd_ratio, self.publish_every = cfg.learner.utd_ratio, cfg.learner.publish_every
        self.lead = cfg.learner.warmup_transitions + 2 * cfg.learner.publish_every

    @classmethod
    def connect(cls, cfg: DictConfig, run_dir: Path, actor_id: str, agent: SACAgent) -> PolicySource:
        from robot_rl.transport.client import LearnerClient, StepStreamer

        client = LearnerClient(learner_address(cfg, run_dir), resolve_token(cfg), actor_id, tls=tls_config(cfg))
        streamer = StepStreamer(client, max_pending_bytes=cfg.train.backlog_mb << 20,
                                spill_path=run_dir / f"{actor_id}.backlog")
        return cls(cfg, actor_id, client, streamer, agent)

    def send(self, record: dict[str, Any]) -> None:
        self.streamer.put(record, int(record["event"]) == BEGIN)

    def refresh(self) -> bool:
        """Load newer weights if the learner has them; False when it has none or is away."""
        try:
            fetched = self.client.fetch_weights(self.version)
        except self.transport_error as e:
            self.outage.failed(e, f"acting with version {self.version}, {self.streamer.pending} steps queued")
            return False
        self.outage.ended()
        if fetched is None:
            return False
        self.version, arrays = fetched
        self.agent.load_policy_arrays(arrays)
        return True

    def wait_for_first_weights(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.refresh():
            if time.monotonic() > deadline:
                raise RuntimeError(f"no policy weights from the learner within {timeout_s:.0f} s; with init= the "
                                   "actor does not act before it has the policy it starts from")
            time.sleep(0.5)

    def wait_for_learner(self, steps: int, stop: threading.Event) -> None:
        """In sim, keep the actor from running ahead of the learner's update-to-data ratio."""
        while steps * self.utd_ratio > self.version * self.publish_every + self.lead and not stop.is_set():
            if not self.refresh():
                time.sleep(0.02)

    def check_session(self) -> None:
        """Stop (one line) when another session took over this actor id."""
        if self.streamer.superseded:
            raise RunFailed(f"actor {self.actor_id}: {self.streamer.superseded}")

    def flush(self, stopped: bool) -> None:
        """A finished run waits for the learner to have every step; a stopped one (a signal)
        does not wait on a learner that may be gone: its steps are in the actor's store."""
        self.streamer.flush(timeout=1.0 if stopped else 30.0)

    def __enter__(self) -> PolicySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.streamer.close()
        self.client.close()


def open_store(run_dir: Path, actor_id: str, env: RobotEnv) -> Any:
    """The actor's own EpisodeStore, run_dir/<actor_id>.zarr, created or appended to."""
    from robot_rl.data import EpisodeStore, StoreSpec

    spec = StoreSpec.from_spaces(env.observation_space, env.action_space.shape[0])
    return EpisodeStore.append_or_create(run_dir / f"{actor_id}.zarr", spec)


def make_actor(cfg: DictConfig, envs: ActorEnvs, learner: PolicySource, store: Any) -> Actor:
    """The acting loop over the env stack, continuing from the steps already in ``store``:
    random actions first (``train.random_steps``, those not taken yet), then the policy."""
    done_before = store.num_steps
    policy = RandomWarmup(learner.agent, max(0, random_steps(cfg) - done_before), envs.env.action_space,
                          cfg.seed + done_before)
    # the simulator runs as fast as it can unless told otherwise; a real robot runs at its control rate
    rate_hz = cfg.train.rate_hz or (None if envs.simulated else cfg.robot.control_hz)
    actor = Actor(envs.acting, policy, send=learner.send, store=store, rate_hz=rate_hz,
                  refresh_weights=learner.refresh, weights_every_steps=cfg.train.weights_every_steps,
                  seed=cfg.seed + len(store.episodes()), console=envs.console)
    actor.total_steps = done_before
    return actor


def act(cfg: DictConfig, actor: Actor, learner: PolicySource, envs: ActorEnvs, progress: Progress,
        report: TrainReport, stop: threading.Event) -> None:
    """Step until the run's total (or ``stop``); evaluate in sim every ``train.eval_every``
    steps, on hardware log the labelled success rate every 100 steps."""
    every = cfg.train.eval_every
    next_eval = (actor.total_steps // every + 1) * every if every > 0 else 0
    while actor.total_steps < cfg.train.env_steps and not stop.is_set():
        learner.check_session()
        if envs.simulated and not actor.in_episode:
            learner.wait_for_learner(actor.total_steps, stop)
        actor.step()
        progress.bar.update(1)
        if envs.eval_env is None:
            if actor.episodes and actor.total_steps % 100 == 0:
                recent = [e.success for e in actor.episodes[-20:]]
                progress.wandb_log.log({"train_success": np.mean(recent), "weights_version": learner.version},
                                       actor.total_steps)
        elif actor.total_steps >= next_eval or actor.total_steps == cfg.train.env_steps:
            next_eval += every
            learner.refresh()
            success = evaluate(learner.agent, envs.eval_env, cfg.train.eval_episodes)
            progress.evaluated(report, actor, success, weights=learner.version, queued=learner.streamer.pending)
    learner.flush(stop.is_set())


def finish_report(report: TrainReport, actor: Actor, version: int, started: float) -> TrainReport:
    report.env_steps, report.episodes, report.weights_version = actor.total_steps, len(actor.episodes), version
    report.intervention_steps = sum(e.interventions for e in actor.episodes)
    report.timing = actor.timing.summary()
    log.info("actor loop: %s", report.timing)
    report.train_success = float(np.mean([e.success for e in actor.episodes])) if actor.episodes else float("nan")
    report.wall_s = time.perf_counter() - started
    return report


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


def report_file(actor_id: str) -> str:
    return f"{actor_id}.report.json"


def write_report(report: TrainReport, run_dir: Path, actor_id: str) -> None:
    atomic_write_text(run_dir / report_file(actor_id), json.dumps(asdict(report)))


def read_report(run_dir: Path, actor_id: str) -> TrainReport:
    data = json.loads((run_dir / report_file(actor_id)).read_text())
    timing = TimingSummary(**data.pop("timing")) if data.get("timing") else None
    curves = {name: [tuple(point) for point in data.get(name, [])] for name in ("curve", "intervention_curve")}
    return TrainReport(**{**data, **curves, "timing": timing})
