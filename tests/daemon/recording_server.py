"""A real, tiny HTTP server for delivery tests (werkzeug in a thread, port 0).

It records every request (monotonic arrival time, method, path, headers, raw
and decompressed body) and answers from a script: each request consumes the
next scripted `Reply` (or callable taking the `RecordedRequest`); when the
script is empty it behaves like a minimal ingestion backend: 201 with a
receipt, and 200 `"duplicate": true` for a package id it has already stored.
A `Reply(hang_s=…)` holds the request open to exercise client timeouts.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


@dataclass
class Reply:
    status: int = 201
    body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)
    hang_s: float = 0.0  # wait this long (or until the server stops) before answering


@dataclass
class RecordedRequest:
    at: float  # time.monotonic() on arrival
    method: str
    path: str
    headers: dict[str, str]
    raw_body: bytes
    body: bytes  # after Content-Encoding: gzip is undone

    def json(self) -> dict:
        return json.loads(self.body)


def error_reply(status: int, code: str, message: str, details=None, headers=None) -> Reply:
    error: dict = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return Reply(status, {"error": error}, dict(headers or {}))


class RecordingServer:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.stored: dict[str, str] = {}  # package_id -> receipt
        self._script: deque[Reply | Callable[[RecordedRequest], Reply]] = deque()
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="recording-server",
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/telemetry"

    def start(self) -> RecordingServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases hanging handlers
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def script(self, *replies: Reply | Callable[[RecordedRequest], Reply]) -> None:
        with self._cond:
            self._script.extend(replies)

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> list[RecordedRequest]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= n, timeout):
                raise TimeoutError(f"server saw {len(self.requests)} requests, expected {n}")
            return list(self.requests)

    # -- the WSGI app ------------------------------------------------------
    def _wsgi(self, environ, start_response):
        request = Request(environ)
        raw = request.get_data()
        body = gzip.decompress(raw) if request.headers.get("Content-Encoding") == "gzip" else raw
        recorded = RecordedRequest(time.monotonic(), request.method, request.path,
                                   dict(request.headers), raw, body)
        with self._cond:
            self.requests.append(recorded)
            step = self._script.popleft() if self._script else self.accept
            self._cond.notify_all()
        reply = step(recorded) if callable(step) else step
        if reply.hang_s:
            self._stopping.wait(reply.hang_s)
        response = Response(json.dumps(reply.body) if reply.body is not None else b"",
                            status=reply.status, headers=reply.headers,
                            content_type="application/json")
        return response(environ, start_response)

    def accept(self, recorded: RecordedRequest) -> Reply:
        package = recorded.json()
        package_id = package["package_id"]
        events = len(package["summary"]["events"])
        with self._cond:
            if package_id in self.stored:
                return Reply(200, {"package_id": package_id, "accepted_events": 0,
                                   "duplicate_events": events, "duplicate": True,
                                   "receipt": self.stored[package_id]})
            receipt = "sha256:" + hashlib.sha256(recorded.body).hexdigest()
            self.stored[package_id] = receipt
        return Reply(201, {"package_id": package_id, "accepted_events": events,
                           "duplicate_events": 0, "receipt": receipt})


# -- valid packages to send ---------------------------------------------------

def make_package_bytes(n_events: int = 3, *, package_id: str | None = None, pad_events_to: int = 0) -> bytes:
    """A schema-valid package (client.contracts.schema) with `n_events` sanitized events.

    `pad_events_to`: repeat events until the JSON is at least that many bytes
    (to test size caps).
    """
    import uuid

    from branchpy_telemetry.client.contracts.schema import (
        SCHEMA_VERSION,
        Platform,
        SanitizedEvent,
        Summary,
        TelemetryPackage,
        UsageStatistics,
        package_encoder,
    )
    from branchpy_telemetry.client.emitter.stamping import new_event_id

    def build(n: int) -> bytes:
        events = [SanitizedEvent(event_id=new_event_id(), ts="2026-11-28T01:02:03.456Z", category="command",
                                 source="cli", name="analyze", duration_ms=12.5, status="ok")
                  for _ in range(n)]
        package = TelemetryPackage(
            schema_version=SCHEMA_VERSION, package_id=package_id or str(uuid.uuid4()),
            export_timestamp="2026-11-28T01:05:00.000Z", branchpy_version="0.0.0",
            platform=Platform(os="linux", arch="x86_64", python="3.11"),
            summary=Summary(events=events, event_count=n), performance_metrics={},
            usage_statistics=UsageStatistics(commands={"analyze": n}), errors=[],
            governance_id=str(uuid.uuid4()), correlation_ids=[])
        return package_encoder.encode(package)

    data = build(n_events)
    while pad_events_to and len(data) < pad_events_to:
        n_events *= 2
        data = build(n_events)
    return data
