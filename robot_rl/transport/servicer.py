"""What the learner does with each call: check, deduplicate and deliver step batches; serve weights.

A refused message (malformed arrays, bad token) is logged, counted and answered with an error
status for that one call; the worker thread then serves the next caller as usual.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import NoReturn

import grpc
import numpy as np

from robot_rl.transport import robot_rl_transport_pb2 as pb
from robot_rl.transport import robot_rl_transport_pb2_grpc as pb_grpc
from robot_rl.transport.arrays import ArrayLimits, decode_arrays
from robot_rl.transport.auth import INSTANCE_KEY
from robot_rl.transport.dedup import BatchDeduplicator
from robot_rl.transport.errors import MalformedMessage

log = logging.getLogger("robot_rl.transport")

MAX_ACTOR_ID_LENGTH = 128
# on_steps(actor_id, steps, session); raising ValueError refuses the batch (INVALID_ARGUMENT)
StepsCallback = Callable[[str, list[dict[str, np.ndarray]], int], None]


@dataclass
class TransportStats:
    """Counters an operator reads to tell a quiet actor from a refused or misconfigured one."""

    steps_received: int = 0
    batches: int = 0
    duplicate_batches: int = 0  # retries of batches already delivered, acknowledged and not delivered again
    refused_unauthenticated: int = 0
    refused_malformed: int = 0  # undecodable, or not fitting the run's spec (on_steps raised ValueError)
    refused_superseded: int = 0  # from an actor session whose id a newer session took over
    replaced_sessions: int = 0
    weights_served: int = 0  # complete weight downloads


@dataclass(frozen=True)
class PublishedWeights:
    """One version, chunked once at publication and then served as is to every actor."""

    version: int
    chunks: list[pb.WeightsChunk]


class LearnerServicer(pb_grpc.LearnerServicer):
    """The RPC handlers; thread-safe, since gRPC runs them on a pool of worker threads."""

    def __init__(self, on_steps: StepsCallback, limits: ArrayLimits) -> None:
        self._on_steps = on_steps
        self._limits = limits
        self._dedup = BatchDeduplicator()
        self._stats = TransportStats()
        self._stats_lock = threading.Lock()
        self._weights: PublishedWeights | None = None
        self._weights_lock = threading.Lock()
        self.instance = os.urandom(8).hex()  # tells actors that this is a new learner (a restarted one)
        self._sessions: dict[str, int] = {}  # actor id: the session that streams under it
        self._superseded: set[tuple[str, int]] = set()

    def stats(self) -> TransportStats:
        """A consistent snapshot of the counters."""
        with self._stats_lock:
            return replace(self._stats)

    def publish(self, weights: PublishedWeights) -> None:
        with self._weights_lock:
            if self._weights is not None and weights.version <= self._weights.version:
                raise ValueError(f"weights version {weights.version} is not newer than {self._weights.version}")
            self._weights = weights

    def SendSteps(self, request: pb.StepBatch, context: grpc.ServicerContext) -> pb.StepAck:
        actor_id = request.actor_id
        if not actor_id or len(actor_id) > MAX_ACTOR_ID_LENGTH:
            self._refuse_malformed(context, actor_id, f"actor_id must be 1..{MAX_ACTOR_ID_LENGTH} characters")
        if request.sequence == 0:
            self._refuse_malformed(context, actor_id, "sequence numbers start at 1")
        try:
            steps = [decode_arrays(step.arrays, self._limits) for step in request.steps]
        except MalformedMessage as exc:
            self._refuse_malformed(context, actor_id, str(exc))
        self._claim(context, actor_id, request.session)
        try:
            delivered = self._dedup.deliver_once((actor_id, request.session), request.sequence,
                                                 lambda: self._on_steps(actor_id, steps, request.session))
        except ValueError as exc:  # records that do not fit the run: a retry cannot fix them
            self._refuse_malformed(context, actor_id, str(exc))
        except Exception as exc:
            # Not marked as delivered, so the actor's retry gets another chance.
            log.exception("on_steps failed for a batch from actor %r", actor_id)
            context.abort(grpc.StatusCode.INTERNAL, f"learner failed to take the batch: {exc}")
        with self._stats_lock:
            if delivered:
                self._stats.batches += 1
                self._stats.steps_received += len(steps)
            else:
                self._stats.duplicate_batches += 1
        context.set_trailing_metadata(((INSTANCE_KEY, self.instance),))
        return pb.StepAck(sequence=request.sequence, duplicate=not delivered)

    def _claim(self, context: grpc.ServicerContext, actor_id: str, session: int) -> None:
        """One session streams under an actor id: a new session replaces the one before (a
        restarted or replacement actor), whose later batches are refused, never merged."""
        with self._stats_lock:
            if (actor_id, session) in self._superseded:
                self._stats.refused_superseded += 1
                refused = True
            else:
                refused = False
                previous = self._sessions.get(actor_id)
                if previous != session:
                    if previous is not None:
                        self._superseded.add((actor_id, previous))
                        self._stats.replaced_sessions += 1
                        log.warning("actor id %r: a new actor session replaces the previous one, whose unfinished "
                                    "episode is closed as truncated (give each robot its own train.actor_id)",
                                    actor_id)
                    self._sessions[actor_id] = session
        if refused:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"actor id {actor_id!r} is now used by another actor session; give each actor its own "
                          f"train.actor_id")

    def FetchWeights(self, request: pb.WeightsRequest, context: grpc.ServicerContext) -> Iterator[pb.WeightsChunk]:
        with self._weights_lock:
            published = self._weights  # a fetch finishes with the version it started on
        if published is None or published.version <= request.have_version:
            return
        yield from published.chunks
        with self._stats_lock:
            self._stats.weights_served += 1

    def refused_unauthenticated(self, method: str, peer: str) -> None:
        log.warning("refused unauthenticated call to %s from %s", method, peer)
        with self._stats_lock:
            self._stats.refused_unauthenticated += 1

    def _refuse_malformed(self, context: grpc.ServicerContext, actor_id: str, reason: str) -> NoReturn:
        log.warning("refused malformed message from %s (actor %r): %s", context.peer(), actor_id[:MAX_ACTOR_ID_LENGTH],
                    reason)
        with self._stats_lock:
            self._stats.refused_malformed += 1
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, reason)
        raise AssertionError("unreachable: context.abort raises")
