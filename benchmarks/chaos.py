"""A training run that survives its parts dying: `robot-rl train` in sim while faults are injected.

    python benchmarks/chaos.py [--json] [--env-steps N] [--learner-kills K] [--actor-kills K] [--seed S]

Faults, spread over the run at random times (seeded): kill -9 of the learner (default 5), kill
-9 of the actor mid-episode (default 3; its restart is a replacement actor with the same id,
whose unfinished episode the learner closes as truncated), and the learner made unreachable for
30 s (SIGSTOP, then SIGCONT). `robot-rl train` restarts whatever dies (train.restarts).

At the end: `completed` (train exited 0 and the actor's store holds the budget), `steps_lost`
(steps of episodes the actor finished that are missing from the learner's replay store; the
unfinished episodes of killed actors aside), `steps_duplicated` (episodes the learner stored
twice), `left_behind` (processes of the run still alive), and each role's peak RSS.

Conditions: reach from 32×32 pixels, 25-step episodes, tiny networks, actor paced at
train.rate_hz=20 (a robot's pace, so faults land while it acts), 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from robot_rl.data import EpisodeStore
from robot_rl.report import print_report

CONFIG = ["task=reach", "task.max_steps=25", "cameras.front.resolution=[32,32]", "cameras.front.size=[32,32]",
          "cameras.wrist.resolution=[32,32]", "cameras.wrist.size=[32,32]", "train.random_steps=100",
          "train.eval_episodes=2", "learner.warmup_transitions=100", "learner.batch_size=32",
          "learner.publish_every=20", "learner.checkpoint_every=100", "agent.hidden=[64,64]",
          "agent.encoder_features=16", "logging.progress_bar=false", "train.threads=1", "logging.wandb=disabled",
          "train.rate_hz=20"]
PAUSE_S = 30.0


class RssMonitor:
    """Peak RSS per role (train, learner, actor) of the run's process tree, sampled every second."""

    def __init__(self, root: int):
        self.root, self.peak_mb = root, {"train": 0.0, "learner": 0.0, "actor": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for process, role in tree(self.root):
                try:
                    self.peak_mb[role] = max(self.peak_mb[role], process.memory_info().rss / 2**20)
                except psutil.Error:
                    continue

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return self.peak_mb


def tree(root: int) -> list[tuple[psutil.Process, str]]:
    """(process, role) for train and its children."""
    try:
        parent = psutil.Process(root)
        found = [(parent, "train")]
        for child in parent.children(recursive=True):
            line = " ".join(child.cmdline())
            found.append((child, "learner" if " learner " in line else "actor" if " actor " in line else "train"))
        return found
    except psutil.Error:
        return []


def child_pid(root: int, role: str) -> int | None:
    for process, found in tree(root):
        if found == role and process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
            return process.pid
    return None


def inject(train: subprocess.Popen, faults: list[str], gap_s: tuple[float, float], rng: random.Random,
           done: list[str]) -> None:
    """Inject ``faults`` one after another, a random gap apart, while train runs."""
    for fault in faults:
        deadline = time.monotonic() + rng.uniform(*gap_s)
        while time.monotonic() < deadline:
            if train.poll() is not None:
                return
            time.sleep(0.2)
        role = "learner" if fault in ("kill_learner", "pause_learner") else "actor"
        pid = None
        while pid is None and train.poll() is None:  # a restarting child: wait for it to be back
            pid = child_pid(train.pid, role)
            time.sleep(0.5)
        if pid is None:
            return
        time.sleep(rng.uniform(3.0, 8.0))  # let it get going (and an actor into an episode)
        try:
            if fault == "pause_learner":
                os.kill(pid, signal.SIGSTOP)
                time.sleep(PAUSE_S)
                os.kill(pid, signal.SIGCONT)
            else:
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        done.append(fault)
        print(f"[{time.strftime('%H:%M:%S')}] {fault} (pid {pid})", flush=True)


def episodes_by_start(path: Path, complete_only: bool) -> dict[tuple[float, int], int]:
    """{(first step's stamp, length): count} of a store's episodes."""
    found: dict[tuple[float, int], int] = {}
    with EpisodeStore.open(path) as store:
        for info in store.episodes():
            if complete_only and not info.complete:
                continue
            key = (round(float(store.load_episode(info.index)["stamp"][0]), 6), info.length)
            found[key] = found.get(key, 0) + 1
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--env-steps", type=int, default=4000)
    parser.add_argument("--learner-kills", type=int, default=5)
    parser.add_argument("--actor-kills", type=int, default=3)
    parser.add_argument("--gap", type=float, nargs=2, default=(10.0, 25.0), help="seconds between faults")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", type=Path, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="robot_rl_chaos_"))
    faults = ["kill_learner"] * args.learner_kills + ["kill_actor"] * args.actor_kills + ["pause_learner"]
    rng.shuffle(faults)
    restarts = max(args.learner_kills, args.actor_kills) + 2
    command = [sys.executable, "-m", "robot_rl.cli", "train", *CONFIG, f"train.env_steps={args.env_steps}",
               f"train.eval_every={args.env_steps}", f"train.restarts={restarts}", f"seed={args.seed}",
               f"run_dir={run_dir}"]
    started = time.monotonic()
    with open(run_dir / "train.out", "w") as out:
        train = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    monitor = RssMonitor(train.pid)
    done: list[str] = []
    injector = threading.Thread(target=inject, args=(train, faults, tuple(args.gap), rng, done), daemon=True)
    injector.start()
    code = train.wait()
    injector.join(PAUSE_S + 5)
    wall = time.monotonic() - started
    peak = monitor.stop()
    time.sleep(2.0)
    left = [p.pid for p in psutil.process_iter() if _in_run(p, run_dir)]
    actor = episodes_by_start(run_dir / "actor-0.zarr", complete_only=True)
    learner = episodes_by_start(run_dir / "learner" / "replay.zarr", complete_only=False)
    steps_lost = sum(length * max(0, n - learner.get((stamp, length), 0)) for (stamp, length), n in actor.items())
    duplicated = sum(length * max(0, n - 1) for (stamp, length), n in learner.items())
    with EpisodeStore.open(run_dir / "actor-0.zarr") as store:
        actor_steps = store.num_steps
    completed = code == 0 and actor_steps >= args.env_steps
    rows = [[fault, done.count(fault)] for fault in ("kill_learner", "kill_actor", "pause_learner")]
    rows += [["train exit code", code], ["actor env steps", actor_steps], ["steps lost", steps_lost],
             ["steps duplicated", duplicated], ["processes left behind", len(left)],
             *[[f"peak RSS {role} (MB)", round(mb)] for role, mb in peak.items()], ["wall (s)", round(wall)]]
    summary = {"completed": completed, "kills_survived": done.count("kill_learner") + done.count("kill_actor"),
               "pauses_survived": done.count("pause_learner"), "steps_lost": steps_lost,
               "steps_duplicated": duplicated, "left_behind": len(left), "max_rss_mb": round(max(peak.values())),
               "rss_mb": {k: round(v) for k, v in peak.items()}, "wall_s": round(wall), "env_steps": args.env_steps,
               "run_dir": str(run_dir)}
    print_report(f"chaos: robot-rl train with faults injected ({run_dir})", ["what", "value"], rows, summary,
                 args.json)
    if not completed:
        print((run_dir / "train.out").read_text()[-2000:], file=sys.stderr)


def _in_run(process: psutil.Process, run_dir: Path) -> bool:
    try:
        return process.pid != os.getpid() and f"run_dir={run_dir}" in " ".join(process.cmdline())
    except psutil.Error:
        return False


if __name__ == "__main__":
    main()
