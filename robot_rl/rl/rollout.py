"""Run a policy on the robot for some episodes and report how it did; record an operator's
demonstrations (``robot-rl rollout``, ``robot-rl record``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from robot_rl.config import ConfigError
from robot_rl.env.random_actions import RandomPolicy
from robot_rl.env.robot_env import RobotEnv
from robot_rl.intervention.factory import with_operator
from robot_rl.report import format_table
from robot_rl.rl.actor import Actor, EpisodeSummary
from robot_rl.robots import make_env
from robot_rl.teleop.device import TeleopDevice


@dataclass(frozen=True)
class EpisodeResult:
    episode: int
    seed: int
    steps: int
    success: bool
    episode_return: float


class FunctionPolicy:
    """Adapts ``obs -> action`` callables (a scripted expert's) to the actor's policy API."""

    def __init__(self, fn: Callable[[Mapping[str, np.ndarray]], np.ndarray]):
        self.fn = fn

    def act(self, obs: Mapping[str, np.ndarray], deterministic: bool = False) -> np.ndarray:
        return self.fn(obs)


def make_policy(cfg: DictConfig, env: RobotEnv, seed: int) -> FunctionPolicy | RandomPolicy:
    name = cfg.policy.name
    if name == "expert":
        from robot_rl.sim.expert import ScriptedExpert

        try:
            return FunctionPolicy(ScriptedExpert(env, noise=cfg.policy.noise, seed=seed).act)
        except ValueError as e:
            raise ConfigError(f"invalid value for 'policy.name': {e}") from None
    if name == "random":
        return RandomPolicy(env.action_space, seed)
    raise ConfigError(f"invalid value for 'policy.name': unknown policy {name!r}; choose one of ['expert', 'random']")


def rollout(env: RobotEnv, policy: FunctionPolicy, episodes: int, seed: int, video: str | Path | None = None,
            progress_bar: bool = True, store: object | None = None, source: str = "eval") -> list[EpisodeResult]:
    """Run ``episodes`` episodes (episode i seeded with ``seed + i``), optionally recording them."""
    frames: list[np.ndarray] = []
    actor = Actor(env, policy, store=store, seed=seed, source=source,
                  observer=(lambda: frames.append(env.render())) if video is not None else None)
    bar = tqdm(total=episodes, unit="ep", disable=not progress_bar, dynamic_ncols=True)
    try:
        for _ in range(episodes):
            actor.run(max_episodes=1)
            bar.update(1)
            bar.set_postfix(success=f"{np.mean([e.success for e in actor.episodes]):.0%}")
    finally:
        bar.close()
    if video is not None:
        write_video(video, frames, fps=env.metadata["render_fps"])
    return [EpisodeResult(e.episode, seed + e.episode, e.steps, e.success, e.episode_return) for e in actor.episodes]


def write_video(path: str | Path, frames: list[np.ndarray], fps: float) -> None:
    import imageio.v2 as imageio

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(str(path), fps=fps, codec="libx264", quality=8, macro_block_size=16) as writer:
        for frame in frames:
            writer.append_data(frame)


def results_table(results: list[EpisodeResult]) -> str:
    rows = [[r.episode, r.seed, r.steps, r.success, f"{r.episode_return:.2f}"] for r in results]
    rate = np.mean([r.success for r in results]) if results else 0.0
    mean_steps = np.mean([r.steps for r in results]) if results else 0.0
    mean_return = np.mean([r.episode_return for r in results]) if results else 0.0
    rows.append(["all", "", f"{mean_steps:.1f}", f"{rate:.0%}", f"{mean_return:.2f}"])
    return format_table(["episode", "seed", "steps", "success", "return"], rows)


def record_teleop(cfg: DictConfig, path: Path, env_factory: Callable[[DictConfig], RobotEnv] = make_env,
                  device: TeleopDevice | None = None) -> list[EpisodeSummary]:
    """Record ``cfg.episodes`` teleoperated demonstrations (every step the operator's) into the
    EpisodeStore at ``path`` (appended to, or created), labels included."""
    from robot_rl.data import EpisodeStore, StoreSpec

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
