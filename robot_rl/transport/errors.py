"""The two ways a transport call fails: the message is bad, or the peer did not take it."""

from __future__ import annotations

import grpc


class MalformedMessage(ValueError):
    """A received message breaks the wire contract (dtype, shape, length, limits); refuse it, don't guess."""


class TransportError(RuntimeError):
    """The learner was unreachable or refused a call; ``code`` says which, so callers can retry or give up."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code
