"""Run a policy on the robot for some episodes and report how it did."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from robot_rl.config import ConfigError
from robot_rl.env.robot_env import RobotEnv
from robot_rl.report import format_table

Policy = Callable[[dict[str, np.ndarray]], np.ndarray]


@dataclass(frozen=True)
class EpisodeResult:
    episode: int
    seed: int
    steps: int
    success: bool
    episode_return: float
    final_progress: float


def make_policy(cfg: DictConfig, env: RobotEnv, seed: int) -> Policy:
    name = cfg.policy.name
    if name == "expert":
        from robot_rl.sim.expert import ScriptedExpert

        try:
            return ScriptedExpert(env, noise=cfg.policy.noise, seed=seed).act
        except ValueError as e:
            raise ConfigError(f"invalid value for 'policy.name': {e}") from None
    if name == "random":
        space = env.action_space
        space.seed(seed)
        return lambda obs: space.sample()
    raise ConfigError(f"invalid value for 'policy.name': unknown policy {name!r}; choose one of ['expert', 'random']")


def rollout(env: RobotEnv, policy: Policy, episodes: int, seed: int, video: str | Path | None = None,
            progress_bar: bool = True) -> list[EpisodeResult]:
    """Run ``episodes`` episodes (episode i seeded with ``seed + i``)."""
    frames: list[np.ndarray] = []
    results: list[EpisodeResult] = []
    bar = tqdm(total=episodes, unit="ep", disable=not progress_bar, dynamic_ncols=True)
    try:
        for i in range(episodes):
            obs, info = env.reset(seed=seed + i)
            if video is not None:
                frames.append(env.render())
            total, steps, done = 0.0, 0, False
            while not done:
                obs, reward, terminated, truncated, info = env.step(policy(obs))
                total += reward
                steps += 1
                done = terminated or truncated
                if video is not None:
                    frames.append(env.render())
            results.append(EpisodeResult(i, seed + i, steps, bool(info["is_success"]), total, info["progress"]))
            bar.update(1)
            bar.set_postfix(success=f"{np.mean([r.success for r in results]):.0%}")
    finally:
        bar.close()
    if video is not None:
        write_video(video, frames, fps=env.metadata["render_fps"])
    return results


def write_video(path: str | Path, frames: list[np.ndarray], fps: float) -> None:
    import imageio.v2 as imageio

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(str(path), fps=fps, codec="libx264", quality=8, macro_block_size=16) as writer:
        for frame in frames:
            writer.append_data(frame)


def results_table(results: list[EpisodeResult]) -> str:
    rows = [[r.episode, r.seed, r.steps, r.success, f"{r.episode_return:.2f}", f"{r.final_progress:.2f}"]
            for r in results]
    rate = np.mean([r.success for r in results]) if results else 0.0
    mean_steps = np.mean([r.steps for r in results]) if results else 0.0
    mean_return = np.mean([r.episode_return for r in results]) if results else 0.0
    rows.append(["all", "", f"{mean_steps:.1f}", f"{rate:.0%}", f"{mean_return:.2f}", ""])
    return format_table(["episode", "seed", "steps", "success", "return", "progress"], rows)
