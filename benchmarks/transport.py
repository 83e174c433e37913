"""Actor ⇄ learner throughput over loopback: into the learner's real ingest, and the transport alone.

    python benchmarks/transport.py [--json] [--quick] [--seconds S] [--repeats N]

One actor streams episodes as fast as it can through StepStreamer (batches of 64, at most 512
records unacknowledged) over gRPC on loopback to a learner in a child process, as it would on
its own machine. The episode is one the real Actor recorded on the simulated arm (pick_cube,
random actions, 100 steps, two 128×128 cameras): its begin, step and end records exactly as
the Actor sends them, streamed again and again under new episode numbers (fresh stamps). Each
rate is steps sent ÷ the time from the first step to the acknowledgement of the last, over
whole episodes, after one warm-up episode.

ingest_transitions_per_s: the learner is `robot-rl learner`'s own (run_learner: LearnerServer
→ Learner.ingest, learner.record on), so within each acknowledgement every record is checked
against the run's spec and assembled into its episode, and each finished episode goes into the
replay buffers and is written to the run's zarr EpisodeStore (replay.zarr, both cameras).
Afterwards the store is opened and must hold every step sent. What flatters it: the learner
makes no gradient updates meanwhile (learner.warmup_transitions is out of reach), while a
training learner shares its process, GIL and cores with ingest; the store is on local disk.
More actors would not raise it: ingest holds the learner's lock.

transport_only_transitions_per_s: the same stream into a LearnerServer whose on_steps only
counts: the transport's own ceiling, not what a learner takes (this was transitions_per_s).

weights_push_ms: median time for an actor's fetch_weights to download and reassemble a freshly
published 10M-parameter float32 state dict (40 MB in ~1 MB chunks); weights_publish_ms is the
learner's one-off chunking cost per version.

``--quick``: a smoke run (1.5 s per stream, 2 weight pushes). With ``--json`` the last line is
one JSON object with these figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import grpc
import numpy as np

from robot_rl.data import EpisodeStore
from robot_rl.env.random_actions import RandomPolicy
from robot_rl.report import print_report
from robot_rl.rl.actor import Actor
from robot_rl.rl.learner import REPLAY_STORE
from robot_rl.rl.learner_process import LEARNER_INFO, run_learner
from robot_rl.rl.records import BEGIN, STEP
from robot_rl.robots import make_env
from robot_rl.schema import load_config
from robot_rl.transport import robot_rl_transport_pb2 as pb
from robot_rl.transport.arrays import encode_arrays
from robot_rl.transport.client import LearnerClient, StepStreamer
from robot_rl.transport.server import LearnerServer

TOKEN = secrets.token_hex(16)  # loopback only, fresh each run: never a literal in the repository
ENV = ["task=pick_cube", "cameras=sim"]  # two 128×128 cameras
# the real learner program, recording, on the CPU, making no updates
LEARNER = [*ENV, "learner.device=cpu", "learner.address=127.0.0.1:0", f"learner.token={TOKEN}",
           "learner.record=true", "learner.warmup_transitions=1000000000", "train.threads=1", "logging.wandb=disabled"]
MAX_UNACKED = 512
Record = dict[str, np.ndarray]


def recorded_episode() -> list[Record]:
    """The records the real Actor sends for one pick_cube episode of random actions on the simulated arm."""
    env = make_env(load_config(ENV, name="train"))
    records: list[Record] = []
    try:
        Actor(env, RandomPolicy(env.action_space, seed=0), send=records.append).run(max_episodes=1)
    finally:
        env.close()
    return records


def steps_in(episode: list[Record]) -> int:
    return sum(int(r["event"]) == STEP for r in episode)


def renumbered(episode: list[Record], number: int) -> list[Record]:
    now = np.float64(time.time())
    return [{**r, "episode": np.int64(number), **({"stamp": now} if "stamp" in r else {})} for r in episode]


def send(streamer: StepStreamer, records: list[Record]) -> None:
    for record in records:
        while streamer.pending >= MAX_UNACKED:
            time.sleep(0.001)
        streamer.put(record, begins_episode=int(record["event"]) == BEGIN)


def stream(address: str, episode: list[Record], seconds: float) -> tuple[int, float, int]:
    """(steps, seconds, episodes sent in all): whole episodes for at least ``seconds``, until the
    learner acknowledged the last record, after one warm-up episode."""
    client = LearnerClient(address, TOKEN, "bench")
    streamer = StepStreamer(client, max_batch=64)
    try:
        send(streamer, renumbered(episode, 0))
        if not streamer.flush(120):
            raise RuntimeError("the learner did not acknowledge the warm-up episode within 120 s")
        number, start = 1, time.perf_counter()
        while time.perf_counter() - start < seconds:
            send(streamer, renumbered(episode, number))
            number += 1
        if not streamer.flush(600):
            raise RuntimeError("the learner did not acknowledge every step within 600 s")
        elapsed = time.perf_counter() - start
    finally:
        streamer.close(0)
        client.close()
    return (number - 1) * steps_in(episode), elapsed, number


def serve_learner(run_dir: str, stop: Event) -> None:
    """The real learner program (`robot-rl learner`), in its own process."""
    run_learner(load_config([*LEARNER, f"run_dir={run_dir}"], name="train"), Path(run_dir), stop)


def count_steps(port_out: Connection, arrivals: Synchronized, stop: Event) -> None:
    """A learner that only counts the records reaching on_steps, in its own process."""

    def count(actor_id: str, steps: list[Record], session: int) -> None:
        with arrivals.get_lock():
            arrivals.value += len(steps)

    server = LearnerServer("127.0.0.1:0", TOKEN, count)
    server.start()
    port_out.send(server.port)
    stop.wait()
    server.stop(None)


def in_child(target: Callable[..., None], args: tuple, stop: Event, port: Callable[[BaseProcess], int],
             episode: list[Record], seconds: float) -> tuple[int, float, int]:
    """``stream`` into a learner run by ``target`` in a child process, stopped afterwards."""
    process = multiprocessing.get_context("spawn").Process(target=target, args=args, daemon=True)
    process.start()
    try:
        return stream(f"127.0.0.1:{port(process)}", episode, seconds)
    finally:
        stop.set()
        process.join(120)
        if process.exitcode != 0:
            raise RuntimeError(f"the learner process ended with exit code {process.exitcode}")


def written_port(run_dir: Path, process: BaseProcess, wait_s: float = 300) -> int:
    deadline = time.monotonic() + wait_s
    while not (run_dir / LEARNER_INFO).exists():
        if not process.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the learner did not start (exit code {process.exitcode})")
        time.sleep(0.05)
    return int(json.loads((run_dir / LEARNER_INFO).read_text())["port"])


def ingest_rate(episode: list[Record], seconds: float) -> tuple[float, int]:
    """(steps/s into the real learner, steps it recorded), checked against the steps sent."""
    stop = multiprocessing.get_context("spawn").Event()
    with tempfile.TemporaryDirectory(prefix="transport-") as tmp:
        run_dir = Path(tmp)
        steps, elapsed, episodes = in_child(serve_learner, (tmp, stop), stop,
                                            lambda process: written_port(run_dir, process), episode, seconds)
        store = EpisodeStore.open(run_dir / "learner" / REPLAY_STORE)
        recorded = store.num_steps
        store.close()
    if recorded != episodes * steps_in(episode):
        raise RuntimeError(f"the learner recorded {recorded} steps of the {episodes * steps_in(episode)} sent")
    return steps / elapsed, recorded


def transport_only_rate(episode: list[Record], seconds: float) -> float:
    context = multiprocessing.get_context("spawn")
    arrivals, stop = context.Value("q", 0), context.Event()
    port_in, port_out = context.Pipe(duplex=False)
    steps, elapsed, episodes = in_child(count_steps, (port_out, arrivals, stop), stop, lambda _: port_in.recv(),
                                        episode, seconds)
    if arrivals.value != episodes * len(episode):
        raise RuntimeError(f"{arrivals.value} records arrived of the {episodes * len(episode)} sent")
    return steps / elapsed


def weights_push_ms(repeats: int) -> tuple[float, float]:
    """(median fetch ms, median publish ms) for a 10M-parameter float32 state dict."""
    rng = np.random.default_rng(1)
    state_dict = {
        "encoder.conv.weight": rng.standard_normal((32, 3, 3, 3), dtype=np.float32),
        "encoder.fc.weight": rng.standard_normal((2048, 4096), dtype=np.float32),
        "encoder.fc.bias": rng.standard_normal(4096, dtype=np.float32),
        "actor.fc.weight": rng.standard_normal((1500, 1070), dtype=np.float32),
        "actor.fc.bias": rng.standard_normal(1070, dtype=np.float32),
        "actor.head.weight": rng.standard_normal((8, 256), dtype=np.float32),
    }
    assert abs(sum(a.size for a in state_dict.values()) - 10_000_000) < 20_000
    server = LearnerServer("127.0.0.1:0", TOKEN, lambda actor_id, steps, session: None)
    server.start()
    client = LearnerClient(f"127.0.0.1:{server.port}", TOKEN, "bench")
    fetch_ms, publish_ms = [], []
    try:
        for version in range(1, repeats + 1):
            start = time.perf_counter()
            server.publish_weights(version, state_dict)
            publish_ms.append((time.perf_counter() - start) * 1e3)
            start = time.perf_counter()
            got_version, arrays = client.fetch_weights(version - 1)
            fetch_ms.append((time.perf_counter() - start) * 1e3)
            assert got_version == version and all(np.array_equal(arrays[k], v) for k, v in state_dict.items())
    finally:
        client.close()
        server.stop(None)
    return statistics.median(fetch_ms), statistics.median(publish_ms)


TRANSPORT_TARGET = 1000.0  # transitions/s the transport alone must carry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1.5 s per stream, 2 weight pushes")
    parser.add_argument("--seconds", type=float, default=None, help="length of each stream (default 6, quick 1.5)")
    parser.add_argument("--repeats", type=int, default=None, help="weight pushes to take the median of (default 5)")
    args = parser.parse_args()
    seconds = args.seconds or (1.5 if args.quick else 6.0)
    repeats = args.repeats or (2 if args.quick else 5)

    started = time.perf_counter()
    episode = recorded_episode()
    step_bytes = pb.Step(arrays=encode_arrays(next(r for r in episode if int(r["event"]) == STEP))).ByteSize()
    ingest, recorded = ingest_rate(episode, seconds)
    transport = transport_only_rate(episode, seconds)
    fetch_ms, publish_ms = weights_push_ms(repeats)
    wall = time.perf_counter() - started
    rows = [
        ["ingest_transitions_per_s (real Learner.ingest, zarr recording, no updates)", ingest, "", None],
        ["transport_only_transitions_per_s (on_steps only counts)", transport, f">= {TRANSPORT_TARGET:g}",
         transport >= TRANSPORT_TARGET],
        ["ingest ÷ transport only", ingest / transport, "", None],
        ["steps the learner recorded (all sent, checked)", recorded, "", None],
        ["MB_per_s (transport only)", transport * step_bytes / 1e6, "", None],
        ["weights_push_ms (fetch)", fetch_ms, "", None],
        ["weights_publish_ms (chunking)", publish_ms, "", None],
    ]
    summary = {"ingest_transitions_per_s": round(ingest, 1), "transport_only_transitions_per_s": round(transport, 1),
               "recorded_steps": recorded, "weights_push_ms": round(fetch_ms, 1),
               "weights_publish_ms": round(publish_ms, 1), "bytes_per_transition": step_bytes,
               "targets_met": transport >= TRANSPORT_TARGET, "cpu_threads": os.cpu_count(),
               "grpcio": grpc.__version__, "quick": args.quick, "wall_s": round(wall, 1)}
    print_report(f"actor ⇄ learner over loopback: one actor, pick_cube episodes of {steps_in(episode)} steps, "
                 f"{step_bytes / 1e3:.0f} kB steps (two 128×128 sim cameras) in batches of 64, {seconds:g} s each; "
                 f"10M-parameter float32 weights, median of {repeats}{' (quick)' if args.quick else ''}; {wall:.0f} s",
                 ["metric", "value", "target", "met"], rows, summary, args.json)


if __name__ == "__main__":
    main()
