"""Learner update speed, policy inference latency and actor loop timing.

    python benchmarks/learner_speed.py [--json] [--quick] [--threads N] [--device auto|cpu|cuda]

updates_per_s: SAC updates/s (one critic step, an actor step every second update) on
synthetic batches of 256 with two 128×128 cameras and the trainable patchify encoder, on
this machine's device (cuda when available, else cpu); updates_per_s_64px: the same at
64×64, what a CPU learner sees by default; updates_per_s_frozen_backbone: encoder=resnet
with a randomly initialised ResNet-10-shaped transformers ResNet (64-128-256-512, one
basic block per stage) saved to a temporary folder, frozen, at 128×128.
actor_inference_ms_p99: SACAgent.act on one observation with two 128×128 cameras, p99 of
200 calls after a warm-up. actor_period_error_ms_p99: the real Actor at 10 Hz on the
simulated reach task (two 64×64 cameras) with a random policy for 100 steps (10 s).
``--quick`` shortens everything for a smoke run (batch 32, a few updates, 2 s of actor).
With ``--json`` the last line is one JSON object with these figures.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np
import torch

from robot_rl.env.random_actions import RandomPolicy
from robot_rl.report import print_report
from robot_rl.rl.actor import Actor
from robot_rl.rl.agent import AgentConfig, SACAgent
from robot_rl.robots import make_env
from robot_rl.schema import load_config

CAMERAS = ("front", "wrist")
STATE_DIM = 10  # ee_pos, ee_rot6d, gripper: the default proprio
ACTION_DIM = 4  # reach: position step and gripper
INFERENCE_TARGET_MS, PERIOD_ERROR_TARGET_MS = 15.0, 2.0


def observation_space(size: int) -> gym.spaces.Dict:
    spaces: dict[str, gym.Space] = {c: gym.spaces.Box(0, 255, (size, size, 3), np.uint8) for c in CAMERAS}
    spaces["state"] = gym.spaces.Box(-1, 1, (STATE_DIM,), np.float32)
    return gym.spaces.Dict(spaces)


def synthetic_batch(n: int, size: int, device: torch.device, seed: int = 0) -> dict[str, object]:
    g = torch.Generator().manual_seed(seed)

    def obs() -> dict[str, torch.Tensor]:
        out = {c: torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=g) for c in CAMERAS}
        out["state"] = torch.rand(n, STATE_DIM, generator=g) * 2 - 1
        return {k: v.to(device) for k, v in out.items()}

    return {
        "obs": obs(), "next_obs": obs(),
        "action": (torch.rand(n, ACTION_DIM, generator=g) * 2 - 1).to(device),
        "reward": torch.rand(n, generator=g).to(device),
        "terminated": (torch.rand(n, generator=g) < 0.02).to(device),
    }


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def updates_per_second(size: int, device: torch.device, batch_size: int, updates: int, warmup: int,
                       budget_s: float, **agent_cfg: object) -> float:
    """Updates/s over ``updates`` timed updates, or fewer (at least one) when they would take
    longer than ``budget_s``: on a busy CPU one update can take seconds."""
    agent = SACAgent(observation_space(size), ACTION_DIM, AgentConfig(**agent_cfg), device=device)
    batch = synthetic_batch(batch_size, size, device)
    for _ in range(warmup):
        agent.update(batch)
    sync(device)
    done, start = 0, time.perf_counter()
    while done < updates and (done == 0 or time.perf_counter() - start < budget_s):
        agent.update(batch)  # returns floats: every update ends synchronised
        done += 1
    sync(device)
    return done / (time.perf_counter() - start)


def save_resnet10(folder: str) -> str:
    """A ResNet-10-shaped transformers ResNet, randomly initialised (no download)."""
    from transformers import ResNetConfig, ResNetModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.manual_seed(0)
    config = ResNetConfig(embedding_size=64, hidden_sizes=[64, 128, 256, 512], depths=[1, 1, 1, 1],
                          layer_type="basic")
    ResNetModel(config).save_pretrained(folder)
    return folder


def inference_ms(device: torch.device, calls: int, warmup: int = 10) -> np.ndarray:
    agent = SACAgent(observation_space(128), ACTION_DIM, AgentConfig(), device=device)
    rng = np.random.default_rng(0)
    obs = {c: rng.integers(0, 256, (128, 128, 3), dtype=np.uint8) for c in CAMERAS}
    obs["state"] = rng.uniform(-1, 1, STATE_DIM).astype(np.float32)
    for _ in range(warmup):
        agent.act(obs)
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        agent.act(obs)  # returns a numpy array, so a CUDA call has finished
        times[i] = time.perf_counter() - start
    return times * 1e3


def actor_timing(steps: int, rate_hz: float = 10.0):
    env = make_env(load_config(["task=reach"], name="train"))
    try:
        actor = Actor(env, RandomPolicy(env.action_space, seed=0), rate_hz=rate_hz)
        actor.run(should_stop=lambda: actor.total_steps >= steps)
        actor.timing.missed = actor.pacer.missed  # the Actor copies it at episode ends; this may stop mid-episode
    finally:
        env.close()
    return actor.timing.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (small batches, few calls)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="auto", help="auto (cuda when available, else cpu), cpu or cuda[:N]")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    gpu = device.type == "cuda"
    if args.quick:
        batch, updates, warmup, budget_s, calls, actor_steps = 32, 3, 1, 2.0, 20, 20
    elif gpu:
        batch, updates, warmup, budget_s, calls, actor_steps = 256, 100, 5, 20.0, 200, 100
    else:  # a CPU takes a second or more per update at batch 256: keep the whole run near two minutes
        batch, updates, warmup, budget_s, calls, actor_steps = 256, 10, 1, 15.0, 200, 100

    started = time.perf_counter()
    ups_128 = updates_per_second(128, device, batch, updates, warmup, budget_s)
    ups_64 = updates_per_second(64, device, batch, updates, warmup, budget_s)
    with tempfile.TemporaryDirectory(prefix="resnet10-") as folder:
        ups_resnet = updates_per_second(128, device, batch, updates, warmup, budget_s, encoder="resnet",
                                        resnet_path=save_resnet10(folder))
    inference = inference_ms(device, calls)
    inference_p50, inference_p99 = (float(np.percentile(inference, q)) for q in (50, 99))
    timing = actor_timing(actor_steps)
    wall = time.perf_counter() - started

    rows = [
        ["updates_per_s (128px, patchify)", ups_128, "", None],
        ["updates_per_s_64px (patchify)", ups_64, "", None],
        ["updates_per_s_frozen_backbone (128px, resnet10)", ups_resnet, "", None],
        ["actor_inference_ms_p50", inference_p50, "", None],
        ["actor_inference_ms_p99", inference_p99, f"<= {INFERENCE_TARGET_MS:g}", inference_p99 <= INFERENCE_TARGET_MS],
        ["actor_period_error_ms_p50", timing.period_error_ms_p50, "", None],
        ["actor_period_error_ms_p99", timing.period_error_ms_p99, f"<= {PERIOD_ERROR_TARGET_MS:g}",
         timing.period_error_ms_p99 <= PERIOD_ERROR_TARGET_MS],
        ["actor_missed_deadlines", timing.missed_deadlines, "", None],
    ]
    device_name = torch.cuda.get_device_name(device) if gpu else "cpu"
    summary = {
        "updates_per_s": round(ups_128, 3), "updates_per_s_64px": round(ups_64, 3),
        "updates_per_s_frozen_backbone": round(ups_resnet, 3),
        "actor_inference_ms_p99": round(inference_p99, 3),
        "actor_period_error_ms_p99": round(timing.period_error_ms_p99, 3),
        "device": str(device), "device_name": device_name, "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "torch": torch.__version__, "batch_size": batch, "quick": args.quick,
        "wall_s": round(wall, 1),
    }
    title = (f"learner speed on {device} ({device_name}), torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads, batch {batch}, up to {updates} timed updates or {budget_s:g} s"
             f"{' (quick)' if args.quick else ''}; {wall:.0f} s")
    print_report(title, ["metric", "value", "target", "met"], rows, summary, args.json)


if __name__ == "__main__":
    main()
