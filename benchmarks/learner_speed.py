"""Learner update speed, and, apart, the actor's 10 Hz loop: two loops, measured and shown apart.

    python benchmarks/learner_speed.py [--json] [--quick] [--threads N] [--device auto|cpu|cuda]
                                       [--actor-device cpu|cuda]

Learner (no actor and no environment in these loops):

- updates_per_s: SAC updates/s (one critic step, a policy step every second update) on ONE
  fixed synthetic batch that is already on the device, two 128×128 cameras, the trainable
  patchify encoder, batch 256, on ``--device`` (cuda when available, else cpu). Flattered: no
  replay sampling, no host→device copy, no weight publication, and the same batch each time.
  updates_per_s_64px: the same at 64×64 (a CPU learner's default); updates_per_s_frozen_backbone:
  encoder=resnet, a randomly initialised ResNet-10-shaped transformers ResNet (64-128-256-512,
  one basic block per stage) saved to a temporary folder, frozen, at 128×128.
- updates_per_s_end_to_end (128×128) and updates_per_s_end_to_end_64px: Learner.update called
  as `robot-rl learner`'s loop calls it while updates are owed at the config's utd_ratio (1):
  a real Learner (train config, reach: state[10], action[4]) whose replay buffers were filled
  through Learner.ingest with synthetic episodes (random images; every second step marked as
  an intervention, so the demo buffer holds data and batches mix online and demo rows 50/50),
  each update taking its batch from the BatchPrefetcher (MixtureSampler sampling from the
  replay buffers in a background thread, pinned host memory and the copy to the device on
  CUDA), then agent.update, with a weight publication (policy_arrays + chunk_weights, what
  LearnerServer.publish_weights does) every 50 updates and a metrics line in the run folder.
  Flattered: no actor streams meanwhile (ingest, decoding and the zarr write of a real learner
  share its process and cores), no actor downloads the weights, the run is too short for a
  checkpoint (every 1000 updates), and the buffers hold only a few thousand steps.

Actor (no learning in these loops):

- actor_inference_ms_p50/p99: SACAgent.act alone on one observation with two 128×128 cameras
  on ``--device``, p50/p99 of 200 calls after a warm-up.
- actor_period_error_ms_p99_64px / _128px: the real Actor at 10 Hz on the simulated reach task
  (two 64×64 / 128×128 cameras) with a real SACAgent acting (untrained weights, sampled
  actions) on ``--actor-device`` (cpu, as `robot-rl actor` runs it), for 100 steps (10 s):
  how late each step's deadline is reached, after a few warm-up calls of the policy;
  actor_loop_inference_ms_p99_*: that policy's act inside the loop; actor_missed_deadlines_*.
  Flattered: nothing else runs in the actor's process (no streaming, no store, no console).
- actor_period_error_random_policy_ms_p99: the same loop at 64×64 with a random policy (no
  inference at all): the pacing and the simulator alone (this was actor_period_error_ms_p99).

``--quick`` shortens everything for a smoke run (batch 32, a few updates, 2 s of each actor
loop). With ``--json`` the last line is one JSON object with these figures and targets_met.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np
import torch

from robot_rl.data import StoreSpec
from robot_rl.env.factory import spaces_from_config
from robot_rl.env.random_actions import RandomPolicy
from robot_rl.report import format_table, print_report
from robot_rl.rl.actor import Actor
from robot_rl.rl.agent import AgentConfig, SACAgent
from robot_rl.rl.assembly import agent_for, config_section, make_agent
from robot_rl.rl.learner import Learner
from robot_rl.rl.pacing import TimingSummary
from robot_rl.rl.records import begin_record, end_record, step_record
from robot_rl.robots import make_env
from robot_rl.schema import load_config
from robot_rl.schema.training import LearnerConfig
from robot_rl.transport.weights import chunk_weights

CAMERAS = ("front", "wrist")
STATE_DIM = 10  # ee_pos, ee_rot6d, gripper: the default proprio
ACTION_DIM = 4  # reach: position step and gripper
CAMERA_CONFIG = {64: "sim64", 128: "sim"}  # the config/cameras file of each image size
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
    """Updates/s on one fixed batch already on the device, over ``updates`` timed updates, or
    fewer (at least one) when they would take longer than ``budget_s``: on a busy CPU one
    update can take seconds."""
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


def synthetic_episode(spec: StoreSpec, number: int, length: int, rng: np.random.Generator) -> list[dict]:
    """An episode's records as an actor streams them: random images and state, every second
    step an intervention (what the learner also puts in its demo buffer)."""
    def obs() -> dict[str, np.ndarray]:
        return {k: (rng.integers(0, 256, s.shape, dtype=np.uint8) if s.is_image
                    else rng.uniform(-1, 1, s.shape).astype(s.dtype)) for k, s in spec.obs.items()}

    records = [begin_record(number, obs())]
    action_dim = spec.steps["action"].shape[0]
    for t in range(length):
        action = rng.uniform(-1, 1, action_dim).astype(np.float32)
        records.append(step_record(number, obs(), {
            "action": action, "policy_action": action, "reward": np.float32(0.0), "terminated": np.bool_(False),
            "truncated": np.bool_(t == length - 1), "intervention": np.bool_(t % 2 == 0), "label": np.int8(0),
            "stamp": np.float64(time.time())}))
    return [*records, end_record(number, False)]


def filled_learner(size: int, device: torch.device, batch_size: int, steps: int, run_dir: Path,
                   overrides: Sequence[str] = ()) -> Learner:
    """The Learner of the train config (reach, two size×size cameras) on ``device``, its replay
    buffers filled through Learner.ingest with ``steps`` steps of synthetic episodes."""
    cfg = load_config(["task=reach", f"cameras={CAMERA_CONFIG[size]}", f"learner.batch_size={batch_size}",
                       "learner.record=false", "logging.wandb=disabled", *overrides], name="train")
    obs_space, action_dim = spaces_from_config(cfg)
    spec = StoreSpec.from_spaces(obs_space, action_dim)
    learner = Learner(agent_for(cfg, obs_space, action_dim, device), spec,
                      LearnerConfig(**config_section(cfg.learner, LearnerConfig)), run_dir, seed=cfg.seed,
                      publish=lambda version, arrays: chunk_weights(version, arrays))
    rng, length = np.random.default_rng(0), 100
    for number in range(-(-steps // length)):
        learner.ingest("bench", synthetic_episode(spec, number, length, rng))
    return learner


def end_to_end_updates_per_second(size: int, device: torch.device, batch_size: int, updates: int, warmup: int,
                                  budget_s: float, replay_steps: int, overrides: Sequence[str] = ()) -> float:
    """Learner.update's rate (replay sampling, prefetch, transfer, update, publication) while
    updates are owed, as run_learner makes them; same budget rule as updates_per_second."""
    with tempfile.TemporaryDirectory(prefix="learner-speed-") as tmp:
        learner = filled_learner(size, device, batch_size, replay_steps, Path(tmp), overrides)
        try:
            if learner.updates_due() < warmup + updates:
                raise ValueError(f"{replay_steps} replay steps owe {learner.updates_due()} updates, fewer than "
                                 f"the {warmup + updates} to make")
            for _ in range(warmup):
                learner.update()
            done, start = 0, time.perf_counter()
            while done < updates and (done == 0 or time.perf_counter() - start < budget_s):
                learner.update()  # the agent's update returns floats: it ends synchronised
                done += 1
            return done / (time.perf_counter() - start)
        finally:
            learner.close()


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


def inference_ms(device: torch.device, calls: int, warmup: int = 10, size: int = 128) -> np.ndarray:
    agent = SACAgent(observation_space(size), ACTION_DIM, AgentConfig(), device=device)
    rng = np.random.default_rng(0)
    obs = {c: rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for c in CAMERAS}
    obs["state"] = rng.uniform(-1, 1, STATE_DIM).astype(np.float32)
    for _ in range(warmup):
        agent.act(obs)
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        agent.act(obs)  # returns a numpy array, so a CUDA call has finished
        times[i] = time.perf_counter() - start
    return times * 1e3


def actor_timing(steps: int, size: int = 64, policy: str = "sac", device: str | torch.device = "cpu",
                 rate_hz: float = 10.0) -> TimingSummary:
    """The real Actor at ``rate_hz`` on the simulated reach task with two size×size cameras,
    acting with the train config's SACAgent on ``device`` (``policy="sac"``) or at random."""
    cfg = load_config(["task=reach", f"cameras={CAMERA_CONFIG[size]}"], name="train")
    env = make_env(cfg)
    try:
        if policy == "sac":
            acting = make_agent(cfg, env, torch.device(device))
            obs, _ = env.reset(seed=0)
            for _ in range(5):  # first calls allocate (and on CUDA pick kernels)
                acting.act(obs)
        else:
            acting = RandomPolicy(env.action_space, seed=0)
        actor = Actor(env, acting, rate_hz=rate_hz)
        actor.run(should_stop=lambda: actor.total_steps >= steps)
        actor.timing.missed = actor.pacer.missed  # the Actor copies it at episode ends; this may stop mid-episode
    finally:
        env.close()
    return actor.timing.summary()

def settings(quick: bool, gpu: bool) -> dict[str, float]:
    """Sizes of the run: a CPU takes a second or more per update at batch 256, so it makes few."""
    if quick:
        return {"batch": 32, "updates": 3, "warmup": 1, "budget_s": 2.0, "calls": 20, "actor_steps": 20,
                "replay_steps": 600}
    if gpu:
        return {"batch": 256, "updates": 100, "warmup": 5, "budget_s": 20.0, "calls": 200, "actor_steps": 100,
                "replay_steps": 2000}
    return {"batch": 256, "updates": 10, "warmup": 1, "budget_s": 15.0, "calls": 200, "actor_steps": 100,
            "replay_steps": 2000}


def learner_figures(device: torch.device, s: dict[str, float]) -> dict[str, float]:
    timed = (device, s["batch"], s["updates"], s["warmup"], s["budget_s"])
    figures = {"updates_per_s": updates_per_second(128, *timed), "updates_per_s_64px": updates_per_second(64, *timed)}
    with tempfile.TemporaryDirectory(prefix="resnet10-") as folder:
        figures["updates_per_s_frozen_backbone"] = updates_per_second(128, *timed, encoder="resnet",
                                                                      resnet_path=save_resnet10(folder))
    figures["updates_per_s_end_to_end"] = end_to_end_updates_per_second(128, *timed, s["replay_steps"])
    figures["updates_per_s_end_to_end_64px"] = end_to_end_updates_per_second(64, *timed, s["replay_steps"])
    return figures


def actor_figures(device: torch.device, actor_device: torch.device, s: dict[str, float]) -> dict[str, float]:
    inference = inference_ms(device, s["calls"])
    figures = {"actor_inference_ms_p50": float(np.percentile(inference, 50)),
               "actor_inference_ms_p99": float(np.percentile(inference, 99))}
    for size in (64, 128):
        timing = actor_timing(s["actor_steps"], size, "sac", actor_device)
        figures.update({f"actor_period_error_ms_p50_{size}px": timing.period_error_ms_p50,
                        f"actor_period_error_ms_p99_{size}px": timing.period_error_ms_p99,
                        f"actor_loop_inference_ms_p99_{size}px": timing.inference_ms_p99,
                        f"actor_missed_deadlines_{size}px": timing.missed_deadlines})
    random = actor_timing(s["actor_steps"], 64, "random")
    figures["actor_period_error_random_policy_ms_p99"] = random.period_error_ms_p99
    return figures


def learner_rows(f: dict[str, float]) -> list[list[object]]:
    return [
        ["updates_per_s: fixed batch on the device, 128px, patchify", f["updates_per_s"], "", None],
        ["updates_per_s_64px: fixed batch on the device, 64px", f["updates_per_s_64px"], "", None],
        ["updates_per_s_frozen_backbone: fixed batch, 128px, ResNet-10", f["updates_per_s_frozen_backbone"], "",
         None],
        ["updates_per_s_end_to_end: Learner.update (sample, prefetch, copy), 128px", f["updates_per_s_end_to_end"],
         "", None],
        ["updates_per_s_end_to_end_64px: Learner.update, 64px", f["updates_per_s_end_to_end_64px"], "", None],
        ["end to end ÷ fixed batch, 128px", f["updates_per_s_end_to_end"] / f["updates_per_s"], "", None],
    ]


def actor_rows(f: dict[str, float]) -> list[list[object]]:
    inference, period = f"<= {INFERENCE_TARGET_MS:g}", f"<= {PERIOD_ERROR_TARGET_MS:g}"
    rows = [["actor_inference_ms_p50: SACAgent.act alone, 128px", f["actor_inference_ms_p50"], "", None],
            ["actor_inference_ms_p99: SACAgent.act alone, 128px", f["actor_inference_ms_p99"], inference,
             f["actor_inference_ms_p99"] <= INFERENCE_TARGET_MS]]
    for size in (64, 128):
        p99 = f[f"actor_period_error_ms_p99_{size}px"]
        rows += [[f"actor_period_error_ms_p50_{size}px: SACAgent acting", f[f"actor_period_error_ms_p50_{size}px"],
                  "", None],
                 [f"actor_period_error_ms_p99_{size}px: SACAgent acting", p99, period, p99 <= PERIOD_ERROR_TARGET_MS],
                 [f"actor_loop_inference_ms_p99_{size}px", f[f"actor_loop_inference_ms_p99_{size}px"], "", None],
                 [f"actor_missed_deadlines_{size}px", f[f"actor_missed_deadlines_{size}px"], "", None]]
    rows.append(["actor_period_error_random_policy_ms_p99: 64px, no inference",
                 f["actor_period_error_random_policy_ms_p99"], "", None])
    return rows


def targets_met(f: dict[str, float]) -> bool:
    return (f["actor_inference_ms_p99"] <= INFERENCE_TARGET_MS
            and all(f[f"actor_period_error_ms_p99_{size}px"] <= PERIOD_ERROR_TARGET_MS for size in (64, 128)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (small batches, few calls)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="auto", help="auto (cuda when available, else cpu), cpu or cuda[:N]")
    parser.add_argument("--actor-device", default="cpu",
                        help="where the acting SACAgent of the actor loops runs (cpu, as robot-rl actor runs it)")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    gpu = device.type == "cuda"
    s = settings(args.quick, gpu)

    started = time.perf_counter()
    learner = learner_figures(device, s)
    actor = actor_figures(device, torch.device(args.actor_device), s)
    wall = time.perf_counter() - started

    device_name = torch.cuda.get_device_name(device) if gpu else "cpu"
    utd = load_config(name="train").learner.utd_ratio  # what filled_learner's Learner runs at
    print(f"learner speed on {device} ({device_name}), torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"batch {s['batch']}, up to {s['updates']} timed updates or {s['budget_s']:g} s each; end to end: "
          f"{s['replay_steps']} replay steps, utd_ratio {utd:g}; no actor runs in these loops"
          f"{' (quick)' if args.quick else ''}")
    print(format_table(["metric", "value", "target", "met"], learner_rows(learner)))
    print()
    summary = {**{k: round(v, 3) for k, v in {**learner, **actor}.items()},
               "targets_met": targets_met(actor), "device": str(device), "device_name": device_name,
               "actor_device": args.actor_device, "torch_threads": torch.get_num_threads(),
               "cpu_count": os.cpu_count(), "torch": torch.__version__, "batch_size": s["batch"],
               "replay_steps": s["replay_steps"], "utd_ratio": utd, "quick": args.quick, "wall_s": round(wall, 1)}
    title = (f"actor loop at 10 Hz on the simulated reach task, {s['actor_steps']} steps each, policy on "
             f"{args.actor_device}; no learning in these loops; {wall:.0f} s in all")
    print_report(title, ["metric", "value", "target", "met"], actor_rows(actor), summary, args.json)


if __name__ == "__main__":
    main()
