"""The learning parts assembled from a config, shared by every way of training: the device,
the agent, the learner, scripted demos, the warm-up policy, evaluation, and the run's
report and progress display."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from robot_rl.config import data_paths
from robot_rl.data import EpisodeStore, StoreSpec
from robot_rl.env.random_actions import RandomPolicy
from robot_rl.env.robot_env import RobotEnv
from robot_rl.rewards.training import with_reward_model
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

def record_demos(cfg: DictConfig, path: Path, episodes: int, steps: int = 0) -> Path:
    """Make sure ``path`` holds at least ``episodes`` scripted-expert demos and at least
    ``steps`` demo steps (simulated robot only), recording the ones missing."""
    from robot_rl.rl.rollout import FunctionPolicy
    from robot_rl.sim.expert import ScriptedExpert

    env = with_reward_model(make_env(cfg), cfg)  # the demos' rewards are those learning will see
    spec = StoreSpec.from_spaces(env.observation_space, env.action_space.shape[0])
    store = EpisodeStore.append_or_create(path, spec)
    try:
        held = store.episodes(source="demo")
        missing, missing_steps = episodes - len(held), steps - sum(e.length for e in held)
        if missing > 0 or missing_steps > 0:
            expert = ScriptedExpert(env, noise=cfg.policy.noise, seed=cfg.seed)
            actor = Actor(env, FunctionPolicy(expert.act), store=store, source="demo",
                          seed=cfg.seed + 50_000 + len(held))
            done = actor.run(max_episodes=max(missing, 0))
            done += actor.run(max_steps=missing_steps)  # ends at an episode boundary
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
    intervention_steps: int = 0  # steps in which the operator acted, all finished episodes
    train_success: float = float("nan")  # success rate of the actor's episodes (an actor's report)
    weights_version: int = 0  # newest policy weights the actor loaded
    timing: TimingSummary | None = None  # loop period error and policy inference latency
    wall_s: float = 0.0

    @property
    def final_success(self) -> float:
        return self.curve[-1][1] if self.curve else float("nan")


class Progress:
    """What a run shows as it goes: each evaluation on the report's curves, in the metrics log,
    on the progress bar and on the operator's console (``stats``: the loop's own figures)."""

    def __init__(self, cfg: DictConfig, initial: int, wandb_log: WandbLog, console: Any, progress_bar: bool,
                 curve_file: Path | None = None):
        self.wandb_log, self.console, self.curve_file = wandb_log, console, curve_file
        self.bar = tqdm(total=cfg.train.env_steps, initial=initial, unit="step", disable=not progress_bar,
                        dynamic_ncols=True)

    def evaluated(self, report: TrainReport, actor: Actor, success: float, **stats: Any) -> None:
        steps = actor.total_steps
        report.curve.append((steps, success))
        report.intervention_curve.append((steps, intervention_rate(actor)))
        if self.curve_file is not None:
            self.curve_file.write_text(json.dumps(report.curve))
        recent = [e.success for e in actor.episodes[-20:]]
        train_success = float(np.mean(recent)) if recent else None
        self.wandb_log.log({"eval_success": success, "train_success": train_success,
                            "intervention_rate": report.intervention_curve[-1][1], **stats}, steps)
        self.bar.set_postfix(eval=f"{success:.0%}", train=f"{train_success or 0:.0%}", **stats)
        if self.console is not None:
            self.console.set_learner_stats(eval_success=f"{success:.0%}", **stats)
        log.info("steps %d eval success %.2f %s", steps, success, " ".join(f"{k} {v}" for k, v in stats.items()))

    def close(self) -> None:
        self.bar.close()
