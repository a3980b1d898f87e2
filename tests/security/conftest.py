"""Shared pieces of the security suite: a live server per module and raw HTTP."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import pytest

from ..backend.live_backend import LiveBackend, start_sqlite_backend


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> LiveBackend:
    backend = start_sqlite_backend(tmp_path_factory.mktemp("security"))
    yield backend
    backend.stop()


def connect(server: LiveBackend, timeout: float = 10.0) -> socket.socket:
    parts = urlsplit(server.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=timeout)


def read_response(sock: socket.socket, deadline_s: float = 10.0) -> bytes:
    """Everything the server sends until it closes or a complete response is in (b"" = closed)."""
    sock.settimeout(deadline_s)
    data = b""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep and b"content-length:" in head.lower():
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            if len(body) >= length:
                break
    return data


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else 0
