"""Many robots, one learner: N real `robot-rl actor` processes at 10 Hz into one real learner.

    python benchmarks/fleet.py [--json] [--actors 1 4 8 16] [--seconds S]

For each N: one `robot-rl learner` (records every episode to its zarr replay store and trains),
and N `robot-rl actor` processes on the simulated arm, each with its own run folder and its
default actor id (<host>-<pid>), paced at 10 Hz with the policy's inference in the loop, for
S seconds of acting each. Reported per N:

- held_hz: each actor's steps per second over its acting time (from its store's stamps), the
  lowest of the N; `held` is whether every actor kept within 5 % of 10 Hz;
- steps_lost: steps of the episodes the actors finished that are missing from the learner's
  replay store (0 is the target);
- stream lag p99: from a step's stamp on the actor to its arrival at the learner (one clock);
- the learner's updates/s.

Conditions: reach at 32×32 pixels (two cameras), 25-step episodes, tiny networks, learner
utd_ratio 0.1 (the learner must not be the one holding the actors back: on a robot the actor
never waits for it), everything on this machine's CPU cores (2 here), torch 1 thread each.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from robot_rl.data import EpisodeStore
from robot_rl.report import print_report

RATE_HZ = 10.0
CONFIG = ["task=reach", "task.max_steps=25", "cameras.front.resolution=[32,32]", "cameras.front.size=[32,32]",
          "cameras.wrist.resolution=[32,32]", "cameras.wrist.size=[32,32]", "train.random_steps=50",
          "train.eval_episodes=1", "learner.warmup_transitions=50", "learner.batch_size=32", "learner.utd_ratio=0.1",
          "learner.publish_every=20", "learner.checkpoint_every=1000", "agent.hidden=[64,64]",
          "agent.encoder_features=16", "logging.progress_bar=false", "train.threads=1", "logging.wandb=disabled"]
TOKEN = secrets.token_hex(16)  # loopback only, fresh each run: never a literal in the repository


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_fleet(n: int, seconds: float, root: Path) -> dict:
    env = {**os.environ, "ROBOT_RL_TOKEN": TOKEN}
    port = free_port()
    learner_dir = root / "learner"
    steps = int(seconds * RATE_HZ)
    common = [sys.executable, "-m", "robot_rl.cli"]
    with open(root / "learner.log", "wb") as log:
        learner = subprocess.Popen([*common, "learner", *CONFIG, f"learner.address=127.0.0.1:{port}",
                                    f"run_dir={learner_dir}"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not (learner_dir / "learner.json").exists():
            if learner.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the learner did not start; see {root / 'learner.log'}")
            time.sleep(0.2)
        actors = []
        for k in range(n):
            with open(root / f"actor{k}.log", "wb") as log:
                actors.append(subprocess.Popen(
                    [*common, "actor", *CONFIG, f"train.env_steps={steps}", f"train.eval_every={steps}",
                     f"train.rate_hz={RATE_HZ}", f"learner.address=127.0.0.1:{port}", f"run_dir={root / f'actor{k}'}"],
                    env=env, stdout=log, stderr=subprocess.STDOUT))
        codes = [a.wait(timeout=seconds * 5 + 300) for a in actors]
        time.sleep(2.0)  # the last batches land
    finally:
        learner.terminate()
        learner.wait(120)
    if any(codes):
        raise RuntimeError(f"actors exited with {codes}; see {root}/actor*.log")
    held, sent = [], {}
    for k in range(n):
        (store_path,) = (root / f"actor{k}").glob("*.zarr")
        with EpisodeStore.open(store_path) as store:
            stamps = np.concatenate([store.load_episode(i.index)["stamp"] for i in store.episodes()])
            for info in store.episodes(complete=True):
                data = store.load_episode(info.index)
                sent[(round(float(data["stamp"][0]), 6), info.length)] = info.length
        # acting time: resets between episodes take the same control period, so they count
        held.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    received = {}
    with EpisodeStore.open(learner_dir / "learner" / "replay.zarr") as replay:
        for info in replay.episodes():
            data = replay.load_episode(info.index)
            received[(round(float(data["stamp"][0]), 6), info.length)] = info.length
    lost = sum(length for key, length in sent.items() if key not in received)
    metrics = learner_dir / "learner" / "metrics.jsonl"  # none when the run ended before the first log
    lines = [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.exists() else []
    lags = [m["stream_lag_ms_p99"] for m in lines if "stream_lag_ms_p99" in m]
    lag_p99 = max(lags) if lags else None
    rate = (lines[-1]["updates"] - lines[0]["updates"]) / max(lines[-1]["time"] - lines[0]["time"], 1e-9) \
        if len(lines) > 1 else None
    return {"actors": n, "held_hz_min": float(min(held)), "held": bool(min(held) >= 0.95 * RATE_HZ),
            "steps": int(sum(sent.values())), "steps_lost": int(lost), "stream_lag_ms_p99": lag_p99,
            "learner_updates_per_s": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--seconds", type=float, default=120.0, help="acting time of each actor")
    parser.add_argument("--run-dir", type=Path, default=None)
    args = parser.parse_args()
    root = args.run_dir or Path(tempfile.mkdtemp(prefix="robot_rl_fleet_"))
    results = []
    for n in args.actors:
        folder = root / f"n{n}"
        folder.mkdir(parents=True, exist_ok=True)
        result = run_fleet(n, args.seconds, folder)
        results.append(result)
        print(json.dumps(result), flush=True)
    rows = [[r["actors"], r["held_hz_min"], r["held"], r["steps"], r["steps_lost"], r["stream_lag_ms_p99"],
             r["learner_updates_per_s"]] for r in results]
    held = [r["actors"] for r in results if r["held"]]
    summary = {"max_actors_at_10hz": max(held) if held else 0, "steps_lost": sum(r["steps_lost"] for r in results),
               "seconds": args.seconds, "runs": results}
    print_report(f"fleet: N actors at {RATE_HZ:.0f} Hz into one learner, {args.seconds:.0f} s each ({root})",
                 ["actors", "held Hz (min)", "held", "steps", "lost", "lag p99 ms", "learner upd/s"], rows, summary,
                 args.json)


if __name__ == "__main__":
    main()
