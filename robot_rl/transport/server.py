"""The learner's end of the transport: a gRPC server that many actors connect to at once.

Every call must carry the learner's token (checked by ``TokenAuthInterceptor``); TLS is one
``TLSConfig`` away. Without it the port is insecure and the token travels in clear: fine on
loopback or a lab LAN, not across networks you don't control.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent import futures

import grpc
import numpy as np

from robot_rl.transport import robot_rl_transport_pb2_grpc as pb_grpc
from robot_rl.transport.arrays import ArrayLimits
from robot_rl.transport.auth import TokenAuthInterceptor
from robot_rl.transport.servicer import LearnerServicer, PublishedWeights, StepsCallback, TransportStats
from robot_rl.transport.tls import TLSConfig, server_credentials
from robot_rl.transport.weights import chunk_weights

__all__ = ["LearnerServer", "TLSConfig", "TransportStats"]

log = logging.getLogger("robot_rl.transport")


class LearnerServer:
    """Receives step batches and serves the newest policy weights; ``on_steps(actor_id, steps, session)`` is called
    on the server's worker threads.

    Batches from one actor reach ``on_steps`` in order and once each; batches from different
    actors may arrive concurrently, so ``on_steps`` must be thread-safe and should return
    quickly (hand the steps to a replay buffer). A server cannot be restarted after ``stop``:
    make a new one on the same address and actors reconnect to it.
    """

    def __init__(self, address: str, token: str, on_steps: StepsCallback, tls: TLSConfig | None = None,
                 max_workers: int = 16, max_message_mb: int = 64) -> None:
        if not token:
            raise ValueError("LearnerServer needs a non-empty token: the learner must not run open")
        if tls is not None and not (tls.cert and tls.key):
            raise ValueError("a TLS server needs both cert and key")
        self._address = address
        self._token = token
        self._tls = tls
        self._max_workers = max_workers
        self._max_message_bytes = max_message_mb << 20
        self._servicer = LearnerServicer(on_steps, ArrayLimits(max_array_bytes=self._max_message_bytes))
        self._server: grpc.Server | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port (the free one picked for an address ending in ``:0``)."""
        if self._port is None:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def stats(self) -> TransportStats:
        return self._servicer.stats()

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("LearnerServer.start called twice; make a new server to restart")
        options = [
            ("grpc.max_receive_message_length", self._max_message_bytes),
            ("grpc.max_send_message_length", self._max_message_bytes),
            ("grpc.so_reuseport", 0),  # a second learner on the same port fails instead of splitting traffic
        ]
        workers = futures.ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="learner-rpc")
        auth = TokenAuthInterceptor(self._token, self._servicer.refused_unauthenticated)
        server = grpc.server(workers, interceptors=[auth], options=options)
        pb_grpc.add_LearnerServicer_to_server(self._servicer, server)
        if self._tls is None:
            port = server.add_insecure_port(self._address)
        else:
            port = server.add_secure_port(self._address, server_credentials(self._tls))
        if port == 0:
            raise RuntimeError(f"could not bind {self._address}")
        server.start()
        self._server, self._port = server, port
        log.info("learner transport listening on %s (port %d, %s)", self._address, port,
                 "TLS" if self._tls else "insecure: token in clear")

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop accepting calls; calls in progress get ``grace`` seconds to finish."""
        if self._server is not None:
            self._server.stop(grace).wait()

    def publish_weights(self, version: int, arrays: Mapping[str, np.ndarray]) -> None:
        """Make ``version`` the one served; older versions are dropped, never queued (versions must increase).

        Chunking happens here, once, so serving many actors costs no extra encoding.
        """
        self._servicer.publish(PublishedWeights(version, chunk_weights(version, arrays)))
