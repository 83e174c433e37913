"""Actor ⇄ learner transport throughput over loopback.

    python benchmarks/transport.py [--json] [--seconds S] [--repeats N]

transitions_per_s: transitions that reach the learner's on_steps per second while one actor
streams as fast as it can through StepStreamer (batches of 64); each transition carries two
128×128×3 uint8 images, a float32 state[10], action[4], reward and the done/intervention flags.
The learner runs in a child process, as it would on its own machine.

weights_push_ms: median time for an actor's fetch_weights to download and reassemble a freshly
published 10M-parameter float32 state dict (40 MB in ~1 MB chunks); weights_publish_ms is the
learner's one-off chunking cost per version.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event

import grpc
import numpy as np

from robot_rl.report import print_report
from robot_rl.transport import robot_rl_transport_pb2 as pb
from robot_rl.transport.arrays import encode_arrays
from robot_rl.transport.client import LearnerClient, StepStreamer
from robot_rl.transport.server import LearnerServer

TOKEN = "benchmark"


def transition(rng: np.random.Generator, index: int) -> dict[str, np.ndarray]:
    return {
        "obs/front": rng.integers(0, 256, (128, 128, 3), dtype=np.uint8),
        "obs/wrist": rng.integers(0, 256, (128, 128, 3), dtype=np.uint8),
        "obs/state": rng.standard_normal(10).astype(np.float32),
        "action": rng.standard_normal(4).astype(np.float32),
        "reward": np.array(0.5, dtype=np.float32),
        "terminated": np.array(False),
        "truncated": np.array(False),
        "intervention": np.array(index % 10 == 0),
        "episode": np.array(index // 100, dtype=np.int64),
    }


def run_learner(port_out: Connection, arrivals: Synchronized, stop: Event) -> None:
    """The learner side, in its own process as on a real setup, so actor and learner don't share a GIL."""

    def count(actor_id: str, steps: list[dict[str, np.ndarray]]) -> None:
        with arrivals.get_lock():
            arrivals.value += len(steps)

    server = LearnerServer("127.0.0.1:0", TOKEN, count)
    server.start()
    port_out.send(server.port)
    stop.wait()
    server.stop(None)


def transitions_per_second(seconds: float) -> tuple[float, int]:
    """(arrivals per second at the learner's on_steps, bytes per transition on the wire)."""
    context = multiprocessing.get_context("spawn")
    arrivals, stop = context.Value("q", 0), context.Event()
    port_in, port_out = context.Pipe(duplex=False)
    learner = context.Process(target=run_learner, args=(port_out, arrivals, stop), daemon=True)
    learner.start()
    client = LearnerClient(f"127.0.0.1:{port_in.recv()}", TOKEN, "bench")
    streamer = StepStreamer(client, max_batch=64)
    rng = np.random.default_rng(0)
    pool = [transition(rng, i) for i in range(64)]  # distinct frames without paying for RNG in the loop
    try:
        for i in range(256):  # warm up the connection
            streamer.put(pool[i % 64])
        streamer.flush(10)
        start_count, start = arrivals.value, time.perf_counter()
        i = 0
        while time.perf_counter() - start < seconds:
            if streamer.pending < 512:
                streamer.put(pool[i % 64])
                i += 1
            else:
                time.sleep(0.001)
        elapsed = time.perf_counter() - start
        arrived = arrivals.value - start_count
        streamer.flush(10)
    finally:
        streamer.close(0)
        client.close()
        stop.set()
        learner.join(10)
    return arrived / elapsed, pb.Step(arrays=encode_arrays(pool[0])).ByteSize()


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of the throughput measurement")
    parser.add_argument("--repeats", type=int, default=5, help="weight pushes to take the median of")
    args = parser.parse_args()

    rate, step_bytes = transitions_per_second(args.seconds)
    fetch_ms, publish_ms = weights_push_ms(args.repeats)
    rows = [
        ["transitions_per_s", rate, ">= 1000", rate >= 1000],
        ["MB_per_s", rate * step_bytes / 1e6, "", None],
        ["weights_push_ms (fetch)", fetch_ms, "", None],
        ["weights_publish_ms (chunking)", publish_ms, "", None],
    ]
    summary = {"transitions_per_s": round(rate, 1), "weights_push_ms": round(fetch_ms, 1),
               "weights_publish_ms": round(publish_ms, 1), "bytes_per_transition": step_bytes,
               "cpu_threads": os.cpu_count(), "grpcio": grpc.__version__}
    print_report(f"actor ⇄ learner transport over loopback ({step_bytes / 1e3:.0f} kB transitions in batches of 64, "
                 f"10M-parameter float32 weights, median of {args.repeats})",
                 ["metric", "value", "target", "met"], rows, summary, args.json)


if __name__ == "__main__":
    main()
