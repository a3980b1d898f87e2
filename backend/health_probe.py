"""The readiness probe behind `GET /health`: an answer within a deadline, whatever the database does.

The sinks' own checks run on one background thread. A request waits for the
check at most `deadline_s`; past it the primary is reported down (so a frozen
database gives 503 in seconds, not when its socket finally times out).
Requests that arrive while a check is running share it, so a hung database
holds one thread, however often the load balancer asks.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import structlog

from branchpy_telemetry.backend.sinks.base import Sink, SinkHealth

log = structlog.get_logger("backend.health")

Report = tuple[SinkHealth, dict[str, SinkHealth]]  # (the primary's health, every member's by name)


class HealthProbe:
    def __init__(self, sink: Sink, deadline_s: float):
        self._sink = sink
        self.deadline_s = deadline_s
        self._lock = threading.Lock()
        self._running: Future | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="health-probe")

    def check(self) -> Report:
        with self._lock:
            future = self._running
            if future is None or future.done():
                future = self._running = self._executor.submit(sink_health, self._sink)
        try:
            return future.result(timeout=self.deadline_s)
        except FutureTimeout:
            log.warning("health.probe_timeout", sink=self._sink.kind, deadline_s=self.deadline_s)
            down = SinkHealth(ok=False, kind=self._sink.kind,
                              detail=f"health probe gave no answer within {self.deadline_s:g}s")
            return down, {self._sink.kind: down}

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def sink_health(sink: Sink) -> Report:
    """A CompositeSink reports its members (primary first) through `member_health()`.
    A sink that raises is down."""
    members = getattr(sink, "member_health", None)
    try:
        if callable(members):
            report = dict(members())
            return next(iter(report.values())), report
        primary = sink.health()
    except Exception as exc:  # a readiness probe must answer, whatever the sink does
        log.warning("health.sink_failed", error=type(exc).__name__, detail=str(exc)[:300])
        primary = SinkHealth(ok=False, kind=sink.kind, detail=type(exc).__name__)
    return primary, {sink.kind: primary}
