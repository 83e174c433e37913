"""Bearer-token check for every call, in one interceptor so no RPC can forget it.

Without TLS the token travels in clear: good enough against a mistyped address or a stray
process on a lab LAN or loopback, not against someone on the network path. Turn on TLS
(``TLSConfig``) when the link leaves a trusted network.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

import grpc

METADATA_KEY = "authorization"
INSTANCE_KEY = "robot-rl-learner"  # trailing metadata of every acknowledgement: the learner process's id


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    """The call metadata a client sends with every RPC."""
    return ((METADATA_KEY, f"Bearer {token}"),)


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """Refuses calls without the right ``authorization: Bearer <token>`` with UNAUTHENTICATED.

    The request body of a refused call is never deserialised. ``on_refused(method, peer)`` is
    told about each refusal so the server can log and count it.
    """

    def __init__(self, token: str, on_refused: Callable[[str, str], None]) -> None:
        if not token:
            raise ValueError("an empty token would leave the learner open to anyone who can reach it")
        self._expected = f"Bearer {token}".encode()
        self._on_refused = on_refused

    def intercept_service(self, continuation, handler_call_details):
        presented = ""
        for key, value in handler_call_details.invocation_metadata or ():
            if key == METADATA_KEY:
                presented = value if isinstance(value, str) else value.decode("latin-1")
        if hmac.compare_digest(presented.encode("utf-8", "replace"), self._expected):
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        return self._refusing_handler(handler, handler_call_details.method)

    def _refusing_handler(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        def refuse(_request, context: grpc.ServicerContext):
            self._on_refused(method, context.peer())
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")

        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(refuse)
        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(refuse)
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(refuse)
        return grpc.unary_unary_rpc_method_handler(refuse)
