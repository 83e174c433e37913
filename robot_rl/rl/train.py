"""Wiring for `robot-rl train | learner | actor`: agents, learners and actors from config,
scripted demonstrations, evaluation, and the in-process (lockstep) training loop."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from robot_rl.config import data_paths
from robot_rl.critics.training import relabeler_for, with_critic
from robot_rl.data import EpisodeStore, StoreSpec
from robot_rl.env.random_actions import RandomPolicy
from robot_rl.env.robot_env import RobotEnv
from robot_rl.intervention.factory import with_operator
from robot_rl.rl.actor import Actor
from robot_rl.rl.agent import SACAgent
from robot_rl.rl.learner import Learner
from robot_rl.rl.pacing import TimingSummary
from robot_rl.rl.run_log import WandbLog
from robot_rl.robots import make_env
from robot_rl.schema.training import AgentConfig, LearnerConfig

log = logging.getLogger("robot_rl.train")

DEMO_STORE = "demos.zarr"


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"learner.device={name} but CUDA is not available here; use learner.device=cpu")
    return device


def config_section(cfg: DictConfig, cls: type) -> dict[str, Any]:
    """The entries of the config section ``cfg`` (resolved) that are fields of the dataclass
    ``cls``, to build it from: ``AgentConfig(**config_section(cfg.agent, AgentConfig))``."""
    section = OmegaConf.to_container(cfg, resolve=True)
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in section.items() if k in names}


def agent_for(cfg: DictConfig, observation_space: Any, action_dim: int, device: str | torch.device) -> SACAgent:
    """The agent ``cfg.agent`` describes, for these spaces (an env's, or spaces_from_config's)."""
    return SACAgent(observation_space, action_dim, AgentConfig(**config_section(cfg.agent, AgentConfig)), device=device,
                    seed=cfg.seed)


def make_agent(cfg: DictConfig, env: RobotEnv, device: torch.device) -> SACAgent:
    return agent_for(cfg, env.observation_space, env.action_space.shape[0], device)


def make_learner(cfg: DictConfig, env: RobotEnv, run_dir: Path, demo_stores: list[Path], **kwargs: Any) -> Learner:
    agent = make_agent(cfg, env, pick_device(cfg.learner.device))
    spec = StoreSpec.from_spaces(env.observation_space, env.action_space.shape[0])
    return Learner(agent, spec, LearnerConfig(**config_section(cfg.learner, LearnerConfig)), run_dir, demo_stores,
                   seed=cfg.seed, init=cfg.init, **kwargs)


def demo_sources(cfg: DictConfig, run_dir: Path) -> list[Path]:
    """The demo buffer's stores: the scripted demos recorded into run_dir (``train.demos``), if
    any, and the recordings named by ``data=``."""
    stores = [run_dir / DEMO_STORE] if (run_dir / DEMO_STORE).exists() else []
    return stores + (data_paths(cfg) if cfg.data else [])


def random_steps(cfg: DictConfig) -> int:
    """Uniform-random actions before the policy acts: none when starting from a checkpoint
    (``init=``), whose policy is worth acting with from the first step."""
    return 0 if cfg.init else cfg.train.random_steps


def record_demos(cfg: DictConfig, path: Path, episodes: int) -> Path:
    """Make sure ``path`` holds ``episodes`` scripted-expert demos (simulated robot only),
    recording the ones missing."""
    from robot_rl.rl.rollout import FunctionPolicy
    from robot_rl.sim.expert import ScriptedExpert

    env = with_critic(make_env(cfg), cfg)  # the demos' rewards are those learning will see
    spec = StoreSpec.from_spaces(env.observation_space, env.action_space.shape[0])
    store = EpisodeStore.append_or_create(path, spec)
    try:
        missing = episodes - len(store.episodes(source="demo"))
        if missing > 0:
            expert = ScriptedExpert(env, noise=cfg.policy.noise, seed=cfg.seed)
            actor = Actor(env, FunctionPolicy(expert.act), store=store, source="demo",
                          seed=cfg.seed + 50_000 + episodes - missing)
            done = actor.run(max_episodes=missing)
            log.info("recorded %d expert demos (%d successful) in %s", len(done), sum(e.success for e in done), path)
    finally:
        store.close()
        env.close()
    return path


class RandomWarmup:
    """Uniform random actions for the first ``steps`` calls, then the agent's policy."""

    def __init__(self, agent: SACAgent, steps: int, space: Any, seed: int):
        self.agent, self.remaining = agent, steps
        self.random = RandomPolicy(space, seed)

    def act(self, obs: Mapping[str, np.ndarray], deterministic: bool = False) -> np.ndarray:
        if self.remaining > 0:
            self.remaining -= 1
            return self.random.act(obs)
        return self.agent.act(obs, deterministic)


def evaluate(agent: SACAgent, env: RobotEnv, episodes: int, seed: int = 100_000) -> float:
    """Success rate of the deterministic policy over ``episodes`` seeded episodes."""
    actor = Actor(env, agent, deterministic=True, seed=seed, source="eval")
    return float(np.mean([e.success for e in actor.run(max_episodes=episodes)]))


def intervention_rate(actor: Actor, episodes: int = 20) -> float:
    """Share of the steps of the last ``episodes`` episodes in which the operator acted."""
    recent = actor.episodes[-episodes:]
    return sum(e.interventions for e in recent) / max(1, sum(e.steps for e in recent))


@dataclass
class TrainReport:
    """How a training run went: `robot-rl train` in one process (:func:`train_in_process`), or
    the actor of a two-process run (``run_actor``; what ``train_two_processes`` returns)."""

    curve: list[tuple[int, float]] = field(default_factory=list)  # (env steps, eval success)
    intervention_curve: list[tuple[int, float]] = field(default_factory=list)  # (env steps, share of steps)
    env_steps: int = 0
    updates: int = 0  # learner updates (in one process; an actor does not count them)
    episodes: int = 0
    train_success: float = float("nan")  # success rate of the actor's episodes (an actor's report)
    weights_version: int = 0  # newest policy weights the actor loaded
    timing: TimingSummary | None = None  # loop period error and policy inference latency
    wall_s: float = 0.0

    @property
    def final_success(self) -> float:
        return self.curve[-1][1] if self.curve else float("nan")


def train_in_process(cfg: DictConfig, run_dir: Path, progress_bar: bool = True) -> TrainReport:
    """Actor and learner in one process, in lockstep: after each env step the learner makes
    the updates it owes (``utd_ratio`` per step). Deterministic for a seed on a CPU."""
    started = time.perf_counter()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    if cfg.train.demos:
        record_demos(cfg, run_dir / DEMO_STORE, cfg.train.demos)
    demos = demo_sources(cfg, run_dir)
    env, eval_env = with_critic(make_env(cfg), cfg), make_env(cfg)
    acting_env, console = with_operator(env, cfg)
    wandb_log = WandbLog(cfg, run_dir, "train")
    learner = make_learner(cfg, env, run_dir / "learner", demos, log_metrics=wandb_log.log,
                           relabeler=relabeler_for(cfg))
    agent = learner.agent
    policy = RandomWarmup(agent, max(0, random_steps(cfg) - learner.env_steps), env.action_space, cfg.seed)
    actor = Actor(acting_env, policy, send=lambda record: learner.ingest("local", [record]), seed=cfg.seed,
                  console=console)
    actor.total_steps = learner.env_steps
    report = TrainReport()
    bar = tqdm(total=cfg.train.env_steps, initial=actor.total_steps, unit="step", disable=not progress_bar,
               dynamic_ncols=True)
    metrics: dict[str, float] = {}
    try:
        while actor.total_steps < cfg.train.env_steps:
            actor.step()
            bar.update(1)
            for _ in range(learner.updates_due()):
                metrics = learner.update()
            if actor.total_steps % cfg.train.eval_every == 0 or actor.total_steps == cfg.train.env_steps:
                success = evaluate(agent, eval_env, cfg.train.eval_episodes)
                report.curve.append((actor.total_steps, success))
                report.intervention_curve.append((actor.total_steps, intervention_rate(actor)))
                recent = [e.success for e in actor.episodes[-20:]]
                wandb_log.log({"eval_success": success, "intervention_rate": report.intervention_curve[-1][1]},
                              actor.total_steps)
                bar.set_postfix(eval=f"{success:.0%}", train=f"{np.mean(recent) if recent else 0:.0%}",
                                updates=agent.updates, q=f"{metrics.get('q', float('nan')):.2f}")
                if console is not None:
                    console.set_learner_stats(updates=agent.updates, eval_success=f"{success:.0%}",
                                              critic_loss=round(metrics.get("critic_loss", float("nan")), 4))
                log.info("steps %d eval success %.2f updates %d", actor.total_steps, success, agent.updates)
                if cfg.train.stop_at is not None and success >= cfg.train.stop_at:
                    break
        if learner.run_dir is not None:
            learner.checkpoint()
    finally:
        bar.close()
        wandb_log.close()
        learner.close()
        if console is not None:
            console.close()
        env.close()
        eval_env.close()
    report.env_steps, report.updates, report.episodes = actor.total_steps, agent.updates, len(actor.episodes)
    report.weights_version = learner.weights_version
    report.timing = actor.timing.summary()
    report.wall_s = time.perf_counter() - started
    return report
