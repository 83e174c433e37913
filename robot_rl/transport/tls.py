"""TLS is one config switch away: PEM paths in, gRPC credentials out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc


@dataclass
class TLSConfig:
    """PEM file paths. Server: ``cert`` and ``key``. Client: ``ca`` to verify the server (None: system roots)."""

    cert: str | None = None
    key: str | None = None
    ca: str | None = None


def server_credentials(tls: TLSConfig) -> grpc.ServerCredentials:
    if not (tls.cert and tls.key):
        raise ValueError("a TLS server needs both cert and key")
    return grpc.ssl_server_credentials([(Path(tls.key).read_bytes(), Path(tls.cert).read_bytes())])


def channel_credentials(tls: TLSConfig) -> grpc.ChannelCredentials:
    root = Path(tls.ca).read_bytes() if tls.ca else None
    return grpc.ssl_channel_credentials(root_certificates=root)
