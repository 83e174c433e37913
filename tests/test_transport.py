"""Actor ⇄ learner transport over a real gRPC server on loopback (issue 4)."""

from __future__ import annotations

import filecmp
import importlib.util
import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
import pytest

from robot_rl.transport import robot_rl_transport_pb2 as pb
from robot_rl.transport import robot_rl_transport_pb2_grpc as pb_grpc
from robot_rl.transport.arrays import WIRE_DTYPES, decode_arrays, encode_array, encode_arrays
from robot_rl.transport.auth import bearer_metadata
from robot_rl.transport.client import LearnerClient, StepStreamer
from robot_rl.transport.errors import MalformedMessage, TransportError
from robot_rl.transport.server import LearnerServer, TLSConfig
from robot_rl.transport.weights import CHUNK_BYTES, WeightsAssembler, chunk_weights

TOKEN = "lab-secret"
LOOPBACK = "127.0.0.1:0"


class Received:
    """A thread-safe on_steps that keeps what each actor sent, in arrival order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_actor: dict[str, list[dict[str, np.ndarray]]] = {}

    def __call__(self, actor_id: str, steps: list[dict[str, np.ndarray]], session: int = 0) -> None:
        with self.lock:
            self.by_actor.setdefault(actor_id, []).extend(steps)

    def indices(self, actor_id: str) -> list[int]:
        with self.lock:
            return [int(step["index"]) for step in self.by_actor.get(actor_id, [])]


@pytest.fixture
def start_server():
    """Start LearnerServers on loopback; stops them after the test."""
    servers: list[LearnerServer] = []

    def start(on_steps: Callable = lambda actor_id, steps, session: None, address: str = LOOPBACK,
              **kwargs) -> LearnerServer:
        server = LearnerServer(address, TOKEN, on_steps, **kwargs)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop(grace=None)


class Connections:
    """Makes LearnerClients and StepStreamers for a test and closes them afterwards."""

    def __init__(self) -> None:
        self.clients: list[LearnerClient] = []
        self.streamers: list[StepStreamer] = []

    def __call__(self, server_or_address: LearnerServer | str, actor_id: str = "actor-0", token: str = TOKEN,
                 **kwargs) -> LearnerClient:
        address = server_or_address if isinstance(server_or_address, str) else f"127.0.0.1:{server_or_address.port}"
        client = LearnerClient(address, token, actor_id, **kwargs)
        self.clients.append(client)
        return client

    def stream(self, client: LearnerClient, **kwargs) -> StepStreamer:
        streamer = StepStreamer(client, **kwargs)
        self.streamers.append(streamer)
        return streamer

    def close(self) -> None:
        for streamer in self.streamers:
            streamer.close(flush_timeout=0)
        for client in self.clients:
            client.close()


@pytest.fixture
def connect():
    connections = Connections()
    yield connections
    connections.close()


def transition(index: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(index)
    return {
        "obs/front": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
        "obs/state": rng.standard_normal(10).astype(np.float32),
        "action": rng.standard_normal(4).astype(np.float32),
        "reward": np.array(index / 10, dtype=np.float32),
        "terminated": np.array(index % 7 == 0),
        "index": np.array(index, dtype=np.int64),
    }


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def assert_bit_exact(sent: np.ndarray, got: np.ndarray) -> None:
    assert got.dtype == sent.dtype.newbyteorder("=")
    assert got.shape == sent.shape
    assert got.astype(got.dtype.newbyteorder("<")).tobytes() == sent.astype(sent.dtype.newbyteorder("<")).tobytes()


def every_dtype() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {name: rng.integers(0, 256, 96, dtype=np.uint8).view(dtype).reshape(2, 3, -1)
              for name, dtype in WIRE_DTYPES.items() if name != "bool"}
    arrays["bool"] = rng.integers(0, 2, (5, 2)).astype(bool)
    arrays["float32 nan payload"] = np.array([0x7FC00001, 0xFF800000, 0x80000000], dtype=np.uint32).view(np.float32)
    arrays["scalar"] = np.array(3.5, dtype=np.float64)
    arrays["empty"] = np.zeros((0, 4), dtype=np.int32)
    arrays["non-contiguous"] = np.arange(60, dtype=np.int64).reshape(6, 10)[::2, 1::3].T
    arrays["big-endian"] = np.arange(5, dtype=">i4")
    return arrays


def test_arrays_round_trip_bit_exact_for_every_dtype(start_server, connect):
    received = Received()
    server = start_server(received)
    sent = every_dtype()
    assert {a.dtype.name for a in sent.values()} == set(WIRE_DTYPES)

    connect(server).send_steps([sent, {"only": np.ones(2, dtype=np.float16)}])

    first, second = received.by_actor["actor-0"]
    assert first.keys() == sent.keys()
    for name, array in sent.items():
        assert_bit_exact(array, first[name])
    assert all(a.flags.writeable for a in first.values())
    assert_bit_exact(np.ones(2, dtype=np.float16), second["only"])
    assert server.stats.steps_received == 2 and server.stats.batches == 1


@pytest.mark.parametrize("mutate, complaint", [
    (lambda m: setattr(m, "dtype", "object"), "dtype"),
    (lambda m: setattr(m, "dtype", "complex64"), "dtype"),
    (lambda m: m.shape.__setitem__(0, -2), "negative"),
    (lambda m: setattr(m, "data", m.data[:-1]), "bytes of data"),
    (lambda m: setattr(m, "data", m.data + b"\0"), "bytes of data"),
    (lambda m: m.shape.extend([1 << 40, 1 << 20]), "at most"),
    (lambda m: setattr(m, "name", ""), "name"),
])
def test_decode_refuses_arrays_that_break_the_contract(mutate, complaint):
    msg = encode_array("x", np.zeros((3, 2), dtype=np.float32))
    assert decode_arrays([msg])["x"].shape == (3, 2)
    mutate(msg)
    with pytest.raises(MalformedMessage, match=complaint):
        decode_arrays([msg])


def test_decode_refuses_duplicate_names_and_bool_bytes_other_than_0_1():
    with pytest.raises(MalformedMessage, match="twice"):
        decode_arrays(encode_arrays({"a": np.zeros(1)}) * 2)
    with pytest.raises(MalformedMessage, match="bool"):
        decode_arrays([pb.Array(name="b", dtype="bool", shape=[2], data=b"\x01\x02")])


def test_encode_refuses_dtypes_off_the_whitelist():
    for value in (np.array([object()]), np.zeros(2, dtype=np.complex64), np.array(["text"])):
        with pytest.raises(ValueError, match="not one of"):
            encode_arrays({"x": value})


def test_weights_of_10m_floats_are_chunked_and_reassembled_exactly(start_server, connect):
    rng = np.random.default_rng(1)
    weights = {
        "encoder.weight": rng.standard_normal((2500, 4000), dtype=np.float32),
        "encoder.bias": rng.standard_normal(4000, dtype=np.float32),
        "head.weight": rng.standard_normal((4, 256)).astype(np.float16),
        "log_alpha": np.array(-1.5, dtype=np.float32),
        "steps": np.array(12345, dtype=np.int64),
    }
    chunks = chunk_weights(7, weights)
    total_bytes = sum(a.nbytes for a in weights.values())
    assert total_bytes > 40e6 and len(chunks) == -(-total_bytes // CHUNK_BYTES)  # packed full, small ones shared
    assert max(chunk.ByteSize() for chunk in chunks) <= CHUNK_BYTES + 4096

    server = start_server()
    server.publish_weights(7, weights)
    version, got = connect(server).fetch_weights(have_version=-1)

    assert version == 7 and got.keys() == weights.keys()
    for name, array in weights.items():
        assert_bit_exact(array, got[name])
    assert server.stats.weights_served == 1


def test_a_truncated_or_inconsistent_weights_stream_is_refused():
    weights = {"a": np.arange(300_000, dtype=np.float32), "b": np.ones(10, dtype=np.float64)}
    chunks = chunk_weights(3, weights, chunk_bytes=100_000)
    truncated = WeightsAssembler()
    for chunk in chunks[:-1]:
        truncated.add(chunk)
    with pytest.raises(MalformedMessage, match="incomplete"):
        truncated.result()
    with pytest.raises(MalformedMessage, match="expected byte"):
        WeightsAssembler().add(chunks[1])  # starts mid-array
    mixed = WeightsAssembler()
    mixed.add(chunks[0])
    with pytest.raises(MalformedMessage, match="version"):
        mixed.add(chunk_weights(4, weights, chunk_bytes=100_000)[1])
    whole = WeightsAssembler()
    for chunk in chunks:
        whole.add(chunk)
    version, arrays = whole.result()
    assert version == 3 and all(np.array_equal(arrays[k], v) for k, v in weights.items())


def test_only_the_newest_weights_are_served(start_server, connect):
    server = start_server()
    client = connect(server)
    assert client.fetch_weights(have_version=-1) is None

    server.publish_weights(1, {"w": np.full(3, 1.0, dtype=np.float32)})
    server.publish_weights(2, {"w": np.full(3, 2.0, dtype=np.float32), "b": np.zeros(1, dtype=np.float32)})
    with pytest.raises(ValueError, match="not newer"):
        server.publish_weights(2, {"w": np.zeros(3, dtype=np.float32)})

    for have in (-1, 0, 1):
        version, arrays = client.fetch_weights(have_version=have)
        assert version == 2 and sorted(arrays) == ["b", "w"] and (arrays["w"] == 2.0).all()
    assert client.fetch_weights(have_version=2) is None
    assert server.stats.weights_served == 3


def test_empty_token_is_a_configuration_error():
    with pytest.raises(ValueError, match="token"):
        LearnerServer(LOOPBACK, "", lambda actor_id, steps, session: None)


def malformed_batches() -> dict[str, pb.StepBatch]:
    def batch(sequence: int, array: pb.Array) -> pb.StepBatch:
        return pb.StepBatch(actor_id="mallory", session=99, sequence=sequence, steps=[pb.Step(arrays=[array])])

    return {
        "wrong byte length": batch(1, pb.Array(name="x", dtype="float32", shape=[4], data=b"\0" * 15)),
        "bad dtype": batch(2, pb.Array(name="x", dtype="object", shape=[1], data=b"\0" * 8)),
        "negative shape": batch(3, pb.Array(name="x", dtype="uint8", shape=[-1, 4], data=b"")),
        "no actor id": pb.StepBatch(sequence=4),
    }


def test_refusals_are_logged_counted_and_do_not_disturb_a_good_actor(start_server, connect, caplog):
    received = Received()
    server = start_server(received)
    address = f"127.0.0.1:{server.port}"
    good = connect.stream(connect(server, "good"), max_batch=8)
    stop_attacking = threading.Event()
    codes: list[tuple[str, grpc.StatusCode]] = []

    def attack() -> None:
        with grpc.insecure_channel(address) as channel:
            stub = pb_grpc.LearnerStub(channel)
            wrong = connect(server, "impostor", token="guess")
            while not stop_attacking.is_set():
                for name, batch in malformed_batches().items():
                    try:
                        stub.SendSteps(batch, metadata=bearer_metadata(TOKEN), timeout=5)
                    except grpc.RpcError as exc:
                        codes.append((name, exc.code()))
                for name, call in [
                    ("no token", lambda: stub.SendSteps(malformed_batches()["bad dtype"], timeout=5)),
                    ("wrong token", lambda: wrong.send_steps([transition(0)])),
                    ("wrong token weights", lambda: wrong.fetch_weights(-1)),
                ]:
                    try:
                        call()
                    except grpc.RpcError as exc:
                        codes.append((name, exc.code()))
                    except TransportError as exc:
                        codes.append((name, exc.code))

    with caplog.at_level(logging.WARNING, logger="robot_rl.transport"):
        attacker = threading.Thread(target=attack)
        attacker.start()
        assert wait_until(lambda: len(codes) >= 7)  # the attack is under way before the good actor starts
        for i in range(300):
            good.put(transition(i))
            if i % 50 == 0:
                time.sleep(0.01)
        assert good.flush(timeout=10)
        stop_attacking.set()
        attacker.join()

    assert received.indices("good") == list(range(300))
    assert "mallory" not in received.by_actor and "impostor" not in received.by_actor
    expected = {"wrong byte length": grpc.StatusCode.INVALID_ARGUMENT, "bad dtype": grpc.StatusCode.INVALID_ARGUMENT,
                "negative shape": grpc.StatusCode.INVALID_ARGUMENT, "no actor id": grpc.StatusCode.INVALID_ARGUMENT,
                "no token": grpc.StatusCode.UNAUTHENTICATED, "wrong token": grpc.StatusCode.UNAUTHENTICATED,
                "wrong token weights": grpc.StatusCode.UNAUTHENTICATED}
    assert all(code == expected[name] for name, code in codes)
    rounds = len(codes) // len(expected)
    assert rounds >= 1 and len(codes) == rounds * len(expected)
    stats = server.stats
    assert stats.refused_malformed == 4 * rounds and stats.refused_unauthenticated == 3 * rounds
    assert stats.steps_received == 300
    messages = [r.getMessage() for r in caplog.records if r.name == "robot_rl.transport"]
    assert sum("refused malformed" in m for m in messages) == 4 * rounds
    assert sum("refused unauthenticated" in m for m in messages) == 3 * rounds


def test_a_retried_batch_is_delivered_once(start_server, connect):
    received = Received()
    server = start_server(received)
    client = connect(server)
    steps = [pb.Step(arrays=encode_arrays(transition(i))) for i in range(3)]

    assert client.send_encoded_steps(steps, sequence=1) is True
    assert client.send_encoded_steps(steps, sequence=1) is False  # the retry after a lost acknowledgement
    assert client.send_encoded_steps(steps[:1], sequence=2) is True
    restarted_actor = connect(server)  # same actor_id, new session: its numbering starts again
    assert restarted_actor.send_encoded_steps(steps[1:2], sequence=1) is True

    assert received.indices("actor-0") == [0, 1, 2, 0, 1]
    assert server.stats.duplicate_batches == 1 and server.stats.batches == 3


def test_a_batch_the_learner_failed_to_take_is_retried(start_server, connect):
    received = Received()
    failures = [RuntimeError("replay buffer busy")]

    def flaky(actor_id: str, steps: list[dict[str, np.ndarray]], session: int = 0) -> None:
        if failures:
            raise failures.pop()
        received(actor_id, steps)

    server = start_server(flaky)
    client = connect(server)
    with pytest.raises(TransportError) as refused:
        client.send_steps([transition(0)])
    assert refused.value.code == grpc.StatusCode.INTERNAL

    streamer = connect.stream(client, retry_initial_s=0.01)
    failures.append(RuntimeError("busy again"))
    for i in range(1, 4):
        streamer.put(transition(i))
    assert streamer.flush(timeout=5)
    assert received.indices("actor-0") == [1, 2, 3] and not failures
    assert server.stats.steps_received == 3 and streamer.sent == 3


def test_streamer_drops_a_batch_the_learner_refuses_for_good_and_goes_on(start_server, connect):
    received = Received()
    server = start_server(received, max_message_mb=1)
    streamer = connect.stream(connect(server))
    streamer.put({"too big": np.zeros(2 << 20, dtype=np.uint8)})  # over the learner's message limit
    assert streamer.flush(timeout=5)
    assert streamer.dropped == 1 and streamer.sent == 0
    for i in range(3):
        streamer.put(transition(i))
    assert streamer.flush(timeout=5)
    assert received.indices("actor-0") == [0, 1, 2] and streamer.sent == 3


def test_streamer_catches_up_in_order_after_the_learner_restarts(start_server, connect):
    received = Received()
    first = start_server(received)
    port = first.port
    client = connect(first)
    streamer = connect.stream(client, max_batch=16, retry_initial_s=0.02, retry_max_s=0.2)
    for i in range(100):
        streamer.put(transition(i))
    assert streamer.flush(timeout=5) and streamer.connected

    first.stop(grace=1.0)
    for i in range(100, 250):
        streamer.put(transition(i))  # returns at once while the learner is down
    assert wait_until(lambda: not streamer.connected)
    assert streamer.pending > 0
    time.sleep(0.3)  # a few failed retries
    assert streamer.pending > 0

    second = start_server(received, address=f"127.0.0.1:{port}")
    for i in range(250, 300):
        streamer.put(transition(i))
    assert streamer.flush(timeout=10)

    assert received.indices("actor-0") == list(range(300))
    assert streamer.sent == 300 and streamer.pending == 0 and streamer.connected
    assert first.stats.steps_received + second.stats.steps_received == 300


def test_streamer_drops_the_oldest_steps_when_its_queue_is_full(start_server, connect):
    probe = start_server()
    address = f"127.0.0.1:{probe.port}"
    probe.stop(grace=None)  # nothing listens on this address now
    streamer = connect.stream(connect(address), max_batch=4, max_pending=10, retry_initial_s=0.02, retry_max_s=0.1)
    for i in range(15):
        streamer.put(transition(i))
    assert streamer.dropped == 5 and streamer.pending == 10

    received = Received()
    start_server(received, address=address)
    assert streamer.flush(timeout=10)
    got = received.indices("actor-0")
    assert len(got) == 10 and got == sorted(got) and got[-1] == 14


def test_streamer_spills_beyond_its_ram_budget_and_loses_nothing(start_server, connect, tmp_path):
    probe = start_server()
    address = f"127.0.0.1:{probe.port}"
    probe.stop(grace=None)  # the learner is away
    step_bytes = sum(np.asarray(v).nbytes for v in transition(0).values())
    spill = tmp_path / "actor-0.backlog"
    streamer = connect.stream(connect(address), max_batch=8, max_pending_bytes=5 * step_bytes, spill_path=spill,
                              retry_initial_s=0.02, retry_max_s=0.1)
    for i in range(60):
        streamer.put(transition(i))
    assert streamer.dropped == 0 and streamer.pending == 60
    # RAM holds at most 5 steps and one batch of 8 may be in flight: the rest waits in the file
    assert streamer.spilled >= 60 - 5 - 8 and spill.stat().st_size > (60 - 5 - 8) * step_bytes

    received = Received()
    start_server(received, address=address)
    assert streamer.flush(timeout=20)
    assert received.indices("actor-0") == list(range(60))  # in order, once each
    assert spill.stat().st_size == 0  # drained
    streamer.close()
    assert not spill.exists()


def test_a_restarted_learner_gets_the_episode_it_was_assembling_again(start_server, connect):
    received = Received()
    first = start_server(received)
    port = first.port
    streamer = connect.stream(connect(first), max_batch=4, retry_initial_s=0.02, retry_max_s=0.1)
    for i in range(6):  # an episode begins at 0; the learner has its first six records
        streamer.put(transition(i), begins_episode=i == 0)
    assert streamer.flush(timeout=5)
    first.stop(grace=1.0)  # the learner dies with the episode half assembled

    for i in range(6, 10):  # queued while the learner is down: they go in one batch to the new one
        streamer.put(transition(i), begins_episode=i == 8)  # the episode ends at 7, the next begins at 8
    second = Received()
    start_server(second, address=f"127.0.0.1:{port}")
    assert streamer.flush(timeout=10)
    # the batch that found the new learner (some of 6..9), then the first episode again from its
    # begin record, then what came after it: the new learner assembles 0..7 whole, and 8.. open
    got = second.indices("actor-0")
    start = got.index(0)
    assert got[:start] == [6, 7, 8, 9][:start] and got[start:start + 8] == list(range(8)) and got[-2:] == [8, 9]
    assert streamer.resent_episodes == 1


def test_two_actors_stream_at_once(start_server, connect):
    received = Received()
    server = start_server(received)
    streamers = [connect.stream(connect(server, f"arm-{k}"), max_batch=10) for k in range(2)]

    def produce(streamer: StepStreamer) -> None:
        for i in range(200):
            streamer.put(transition(i))

    threads = [threading.Thread(target=produce, args=(s,)) for s in streamers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(s.flush(timeout=10) for s in streamers)

    assert received.indices("arm-0") == list(range(200)) and received.indices("arm-1") == list(range(200))
    assert server.stats.steps_received == 400


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """(cert, key) for localhost/127.0.0.1, made with cryptography if installed, else the openssl CLI."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    if importlib.util.find_spec("cryptography") is not None:
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        private = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                       .public_key(private.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now - datetime.timedelta(minutes=5))
                       .not_valid_after(now + datetime.timedelta(days=1))
                       .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                                   x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                      critical=False)
                       .sign(private, hashes.SHA256()))
        cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        return cert, key
    if shutil.which("openssl") is None:
        pytest.skip("neither the cryptography package nor the openssl CLI is available to make a test certificate")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def test_tls_round_trip(start_server, connect, tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    received = Received()
    server = start_server(received, tls=TLSConfig(cert=str(cert), key=str(key)))
    server.publish_weights(1, {"w": np.arange(10, dtype=np.float32)})

    client = connect(server, tls=TLSConfig(ca=str(cert)))
    client.send_steps([transition(0), transition(1)])
    version, weights = client.fetch_weights(have_version=0)

    assert received.indices("actor-0") == [0, 1]
    assert version == 1 and np.array_equal(weights["w"], np.arange(10, dtype=np.float32))
    with pytest.raises(TransportError) as plain:
        connect(server, timeout_s=1.0).send_steps([transition(2)])
    assert plain.value.code == grpc.StatusCode.UNAVAILABLE
    assert received.indices("actor-0") == [0, 1]


def test_checked_in_generated_code_matches_the_proto(tmp_path):
    grpc_tools_version = pytest.importorskip("grpc_tools.grpc_version", reason="grpcio-tools is not installed")
    from robot_rl.transport import generate

    checked_in = Path(generate.__file__).parent
    generated_with = pb_grpc.GRPC_GENERATED_VERSION
    if grpc_tools_version.VERSION != generated_with:
        pytest.skip(f"checked-in code is from grpcio-tools {generated_with}, "
                    f"installed is {grpc_tools_version.VERSION}")
    written = generate.generate(tmp_path)

    assert sorted(p.name for p in written) == sorted(generate.GENERATED)
    for path in written:
        assert filecmp.cmp(path, checked_in / path.name, shallow=False), f"{path.name} differs: regenerate it"


def test_a_second_session_under_an_actor_id_replaces_the_first_whose_batches_are_refused(start_server, connect):
    received = Received()
    server = start_server(received)
    first = connect.stream(connect(server, "arm-1"), retry_initial_s=0.01)
    first.put(transition(0))
    assert first.flush(timeout=5)
    second = connect.stream(connect(server, "arm-1"), retry_initial_s=0.01)  # a replacement robot, same id
    second.put(transition(1))
    assert second.flush(timeout=5)
    first.put(transition(2))  # the replaced one is refused for good, not merged, not retried
    assert first.flush(timeout=5) and first.dropped == 1
    assert first.superseded and "give each actor its own train.actor_id" in first.superseded
    assert received.indices("arm-1") == [0, 1]
    assert server.stats.replaced_sessions == 1 and server.stats.refused_superseded == 1
