"""The actor's end: sends step batches to the learner and fetches newer policy weights.

``LearnerClient`` makes one call at a time and raises when it fails; ``StepStreamer`` is what
the control loop uses: ``put`` returns at once and a background thread delivers the steps,
in order and once each, across learner outages.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

from robot_rl.transport import robot_rl_transport_pb2 as pb
from robot_rl.transport import robot_rl_transport_pb2_grpc as pb_grpc
from robot_rl.transport.arrays import encode_arrays
from robot_rl.transport.auth import INSTANCE_KEY, bearer_metadata
from robot_rl.transport.errors import MalformedMessage, TransportError
from robot_rl.transport.tls import TLSConfig, channel_credentials
from robot_rl.transport.weights import WeightsAssembler

log = logging.getLogger("robot_rl.transport")

# Refusals that a retry of the same batch cannot fix.
PERMANENT_REFUSALS = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED,
                                grpc.StatusCode.FAILED_PRECONDITION})


class LearnerClient:
    """One actor's connection to the learner; thread-safe.

    ``session`` is random per client, so a restarted actor's batch numbers never collide with
    those its previous run used. The learner treats a batch numbered at or below one it has
    delivered as a retry, so give each client one sender: ``send_steps`` or a ``StepStreamer``,
    not both. ``timeout_s`` bounds a step batch; ``weights_timeout_s`` a whole
    weights download, which is larger.
    """

    def __init__(self, address: str, token: str, actor_id: str, tls: TLSConfig | None = None, timeout_s: float = 5.0,
                 weights_timeout_s: float = 60.0, max_message_mb: int = 64) -> None:
        if not token:
            raise ValueError("LearnerClient needs the learner's token")
        if not actor_id:
            raise ValueError("LearnerClient needs an actor_id")
        self.address = address
        self.actor_id = actor_id
        self.session = int.from_bytes(os.urandom(8), "little")
        self.timeout_s = timeout_s
        self.weights_timeout_s = weights_timeout_s
        self._metadata = bearer_metadata(token)
        options = [
            ("grpc.max_receive_message_length", max_message_mb << 20),
            ("grpc.max_send_message_length", max_message_mb << 20),
            # gRPC's default reconnect backoff grows to 120 s; an actor should find a restarted learner in seconds.
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ]
        if tls is None:
            self._channel = grpc.insecure_channel(address, options=options)
        else:
            self._channel = grpc.secure_channel(address, channel_credentials(tls), options=options)
        self._stub = pb_grpc.LearnerStub(self._channel)
        self._sequence = 0
        self._sequence_lock = threading.Lock()
        self.learner_instance = ""  # the process that acknowledged the last batch (a new one: it restarted)
        self._send_lock = threading.Lock()

    def next_sequence(self) -> int:
        with self._sequence_lock:
            self._sequence += 1
            return self._sequence

    def send_steps(self, steps: Sequence[Mapping[str, np.ndarray]]) -> None:
        """Deliver one batch; raises TransportError (with ``.code``) when unreachable or refused."""
        encoded = [pb.Step(arrays=encode_arrays(step)) for step in steps]
        # Numbering and sending under one lock: the learner drops a batch numbered below one it has delivered.
        with self._send_lock:
            self.send_encoded_steps(encoded, self.next_sequence())

    def send_encoded_steps(self, steps: Sequence[pb.Step], sequence: int) -> bool:
        """Deliver an encoded batch under ``sequence``; resending the same sequence after a failure is safe.

        Returns False if the learner had already delivered this batch (an earlier attempt got through).
        """
        batch = pb.StepBatch(actor_id=self.actor_id, session=self.session, sequence=sequence, steps=steps)
        try:
            ack, call = self._stub.SendSteps.with_call(batch, timeout=self.timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _transport_error("send_steps", self.address, exc) from exc
        self.learner_instance = dict(call.trailing_metadata() or ()).get(INSTANCE_KEY, "")
        return not ack.duplicate

    def fetch_weights(self, have_version: int) -> tuple[int, dict[str, np.ndarray]] | None:
        """(version, arrays) if the learner holds a version newer than ``have_version``, else None."""
        request = pb.WeightsRequest(actor_id=self.actor_id, have_version=have_version)
        assembler = WeightsAssembler()
        try:
            for chunk in self._stub.FetchWeights(request, timeout=self.weights_timeout_s, metadata=self._metadata):
                assembler.add(chunk)
        except grpc.RpcError as exc:
            raise _transport_error("fetch_weights", self.address, exc) from exc
        except MalformedMessage as exc:
            raise TransportError(f"fetch_weights from {self.address}: malformed weights stream: {exc}") from exc
        if assembler.version is None:
            return None
        try:
            return assembler.result()
        except MalformedMessage as exc:
            raise TransportError(f"fetch_weights from {self.address}: {exc}") from exc

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> LearnerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _transport_error(call: str, address: str, exc: grpc.RpcError) -> TransportError:
    code = exc.code() if isinstance(exc, grpc.Call) else None
    details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
    name = code.name if code is not None else "error"
    return TransportError(f"{call} to {address}: {name}: {details}", code)


class StepStreamer:
    """Streams steps to the learner from a background thread so the control loop never waits on the network.

    ``put`` encodes the step (a snapshot: the caller may reuse its buffers) and queues it. The
    thread sends batches of up to ``max_batch`` steps, one batch at a time, each under its own
    sequence number; while the learner is unreachable it keeps the batch and retries with
    exponential backoff capped at ``retry_max_s``, so after an outage it catches up in order and
    the learner's duplicate check makes every step count once.

    Memory is bounded: at most ``max_pending_bytes`` of queued steps stay in RAM (and at most
    ``max_pending`` steps). Beyond that, with a ``spill_path``, steps are appended to that file
    and sent from it, in order, once the learner is back: nothing is lost and RAM stays flat.
    Without one, the oldest are dropped and counted in ``dropped``.

    A learner that restarted (the acknowledgement names a new learner process) lost the
    episode it was assembling: the streamer sends that episode again from its begin record,
    so an episode the actor finishes reaches the learner whole. A batch the learner refuses
    as malformed cannot succeed on retry: it is logged, dropped and counted in ``dropped``; a
    refusal because another actor session took this actor id over sets ``superseded``.
    The streamer does not own the client; close the client after the streamer.
    """

    def __init__(self, client: LearnerClient, max_batch: int = 64, max_pending: int = 1_000_000,
                 max_pending_bytes: int = 2 << 30, spill_path: str | os.PathLike | None = None,
                 max_batch_bytes: int = 32 << 20, retry_initial_s: float = 0.05, retry_max_s: float = 2.0) -> None:
        if not 0 < max_batch <= max_pending:
            raise ValueError(f"need 0 < max_batch <= max_pending, got {max_batch} and {max_pending}")
        self._client = client
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._max_pending_bytes = max_pending_bytes
        self._max_batch_bytes = max_batch_bytes
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._queue: deque[_Queued] = deque()
        self._queued_bytes = 0
        self._spill = _SpillFile(spill_path) if spill_path is not None else None
        self._in_flight = 0
        self._episode: list[_Queued] = []  # acknowledged records of the episode the learner is assembling
        self._cond = threading.Condition()
        self._closing = False
        self.connected = False
        self.sent = 0
        self.dropped = 0
        self.resent_episodes = 0  # episodes sent again to a restarted learner
        self.superseded: str | None = None
        self._outage_logged = False
        self._thread = threading.Thread(target=self._run, name=f"step-streamer-{client.actor_id}", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Steps queued (in RAM or spilled) or in flight, not yet acknowledged by the learner."""
        with self._cond:
            return len(self._queue) + self._in_flight + (len(self._spill) if self._spill else 0)

    @property
    def spilled(self) -> int:
        """Steps waiting in the spill file."""
        with self._cond:
            return len(self._spill) if self._spill else 0

    def put(self, step: Mapping[str, np.ndarray], begins_episode: bool = False) -> None:
        """Queue ``step``; ``begins_episode`` marks an episode's first record (what a restarted
        learner needs again, see the class docstring)."""
        queued = _Queued(pb.Step(arrays=encode_arrays(step)),
                         sum(np.asarray(value).nbytes for value in step.values()),  # cheaper than ByteSize()
                         begins_episode)
        with self._cond:
            if self._closing:
                raise RuntimeError("StepStreamer is closed")
            over = (self._queued_bytes + queued.nbytes > self._max_pending_bytes
                    or len(self._queue) + self._in_flight >= self._max_pending)
            if self._spill is not None and (over or len(self._spill)):
                self._spill.append(queued)  # in order: once spilling, every newer step goes there too
            else:
                while over and self._queue:
                    self._drop_oldest()
                    over = (self._queued_bytes + queued.nbytes > self._max_pending_bytes
                            or len(self._queue) + self._in_flight >= self._max_pending)
                if over:  # nothing queued to make room (all in flight): the new step is the one dropped
                    self._count_dropped(1)
                    return
                self._queue.append(queued)
                self._queued_bytes += queued.nbytes
            self._cond.notify_all()

    def _drop_oldest(self) -> None:
        dropped = self._queue.popleft()
        self._queued_bytes -= dropped.nbytes
        self._count_dropped(1)

    def _count_dropped(self, n: int) -> None:
        self.dropped += n
        if self.dropped == n or self.dropped % 1000 < n:
            log.warning("step queue full (%d MB in RAM, no spill file): dropped %d oldest steps so far",
                        self._max_pending_bytes >> 20, self.dropped)

    def flush(self, timeout: float) -> bool:
        """Wait until every step put so far is acknowledged; False if ``timeout`` ran out first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._in_flight or (self._spill and len(self._spill)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self, flush_timeout: float = 1.0) -> None:
        """Try to deliver what is queued for up to ``flush_timeout`` seconds, then stop the thread."""
        self.flush(flush_timeout)
        with self._cond:
            self._closing = True
            abandoned = len(self._queue) + self._in_flight + (len(self._spill) if self._spill else 0)
            self._cond.notify_all()
        self._thread.join()
        if self._spill is not None:
            self._spill.close()
        if abandoned:
            log.warning("StepStreamer closed with %d steps not delivered (they are in the actor's store)", abandoned)

    def __enter__(self) -> StepStreamer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not (self._spill and len(self._spill)) and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                batch = self._take_batch()
            instance = self._client.learner_instance
            delivered = self._deliver([q.step for q in batch], self._client.next_sequence())
            if delivered and instance and self._client.learner_instance != instance:
                self._resend_episode(batch)
            with self._cond:
                self._in_flight = 0
                if delivered:
                    self.sent += len(batch)
                    self._remember(batch)
                self._cond.notify_all()

    def _take_batch(self) -> list[_Queued]:
        """Called with the lock held: the oldest steps (RAM first, then the spill file), up to
        max_batch and max_batch_bytes."""
        batch: list[_Queued] = []
        size = 0
        while len(batch) < self._max_batch:
            if self._queue:
                nxt = self._queue[0]
                if batch and size + nxt.nbytes > self._max_batch_bytes:
                    break
                self._queue.popleft()
                self._queued_bytes -= nxt.nbytes
            elif self._spill and len(self._spill):
                nxt = self._spill.peek()
                if batch and size + nxt.nbytes > self._max_batch_bytes:
                    break
                self._spill.pop()
            else:
                break
            batch.append(nxt)
            size += nxt.nbytes
        self._in_flight = len(batch)
        return batch

    def _remember(self, batch: list[_Queued]) -> None:
        """Keep the acknowledged records since the newest begin: what a restarted learner lost."""
        for queued in batch:
            if queued.begin:
                self._episode = []
            self._episode.append(queued)
        if len(self._episode) > 100_000:  # not an episode (no begin records): nothing to resend
            self._episode = []

    def _resend_episode(self, batch: list[_Queued]) -> None:
        """The learner restarted while this batch was on its way: the records of the batch up
        to its first begin belong to an episode the new learner never saw begin. Send that
        episode whole again, then the batch's records from its first begin on (the episode
        after it, which the resent begin record displaced)."""
        first_begin = next((i for i, queued in enumerate(batch) if queued.begin), len(batch))
        episode = [*self._episode, *batch[:first_begin]] if self._episode and self._episode[0].begin else []
        if not episode:
            return
        log.warning("the learner restarted: sending the episode it was assembling again (%d records)", len(episode))
        again = [*episode, *batch[first_begin:]]
        for start in range(0, len(again), self._max_batch):
            if not self._deliver([q.step for q in again[start:start + self._max_batch]], self._client.next_sequence()):
                return
        self.resent_episodes += 1

    def _deliver(self, batch: list[pb.Step], sequence: int) -> bool:
        """Send until acknowledged; False if refused for good or the streamer closed meanwhile."""
        delay = self._retry_initial_s
        while True:
            try:
                self._client.send_encoded_steps(batch, sequence)
            except TransportError as exc:
                if exc.code in PERMANENT_REFUSALS:
                    if exc.code == grpc.StatusCode.FAILED_PRECONDITION:
                        self.superseded = str(exc)
                    log.error("learner refused a batch of %d steps, dropping it: %s", len(batch), exc)
                    with self._cond:
                        self.dropped += len(batch)
                    self.connected = True
                    return False
                if self.connected or not self._outage_logged:
                    log.warning("learner unreachable, keeping steps queued and retrying: %s", exc)
                    self._outage_logged = True
                self.connected = False
                with self._cond:
                    if self._cond.wait_for(lambda: self._closing, timeout=delay):
                        return False
                delay = min(delay * 2, self._retry_max_s)
                continue
            if not self.connected:
                log.info("learner reachable at %s", self._client.address)
            self.connected = True
            self._outage_logged = False
            return True


@dataclass(frozen=True)
class _Queued:
    step: pb.Step
    nbytes: int  # bytes of array data
    begin: bool  # an episode's begin record


class _SpillFile:
    """A first-in first-out queue of encoded steps in a file: length-prefixed records appended
    at the end, read from an offset; the file starts again empty whenever it is drained."""

    HEADER = struct.Struct("<QQB")  # message length, array bytes, begin flag

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w+b")
        self._read_at = 0
        self._count = 0
        self._head: _Queued | None = None

    def __len__(self) -> int:
        return self._count

    def append(self, queued: _Queued) -> None:
        data = queued.step.SerializeToString()
        self._file.seek(0, os.SEEK_END)
        self._file.write(self.HEADER.pack(len(data), queued.nbytes, queued.begin) + data)
        self._count += 1

    def peek(self) -> _Queued:
        if self._head is None:
            self._file.flush()
            self._file.seek(self._read_at)
            length, nbytes, begin = self.HEADER.unpack(self._file.read(self.HEADER.size))
            step = pb.Step()
            step.ParseFromString(self._file.read(length))
            self._head = _Queued(step, nbytes, bool(begin))
            self._read_at = self._file.tell()
        return self._head

    def pop(self) -> _Queued:
        head = self.peek()
        self._head = None
        self._count -= 1
        if self._count == 0:
            self._file.seek(0)
            self._file.truncate()
            self._read_at = 0
        return head

    def close(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)
