"""CompositeSink: fan-out to several sinks; the first is primary (DESIGN §10).

Failure policy, stated once:
- Writes go to every child. Secondaries run on a small thread pool, in
  parallel with the primary; the primary's answer (or its SinkError) is the
  answer. A secondary that raises is isolated: the exception is caught,
  logged (`sink.secondary_failed`) and shown as degraded in `health()` /
  `member_health()` until one of its writes succeeds again.
- A secondary cannot slow an upload beyond `secondary_timeout` seconds
  (counted from the start of the upload): past it the upload returns, the
  write goes on in the background and is reported as timed out; its late
  outcome is recorded when it ends. At most `max_backlog` writes per
  secondary are in flight: beyond that a write is dropped, counted and
  reported, rather than queueing without bound behind a hung server.
- Reads, API keys and the answer of `purge` come from the primary.
  A secondary that missed a package gets it when the package is re-delivered
  (every sink is idempotent on package_id and event_id).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime

import structlog

from branchpy_telemetry.client.schema import TelemetryPackage

from .base import InvalidPackageError, Sink, SinkHealth, StoreResult

log = structlog.get_logger("backend.sinks.composite")


class _Member:
    def __init__(self, index: int, sink: Sink):
        self.index, self.sink = index, sink
        self.name = f"secondary{index}:{sink.kind}" if index else f"primary:{sink.kind}"
        self.in_flight = 0
        self.dropped = 0
        self.failure: str | None = None  # last write failure, cleared by a later success


class CompositeSink(Sink):
    kind = "composite"

    def __init__(self, children: list[Sink], *, secondary_timeout: float = 2.0, max_backlog: int = 16,
                 max_workers: int = 4, failures: dict[int, str] | None = None):
        if not children:
            raise ValueError("CompositeSink needs at least one child")
        self.children = list(children)
        self.primary = self.children[0]
        self._members = [_Member(i, s) for i, s in enumerate(self.children)]
        for index, failure in (failures or {}).items():
            self._members[index].failure = failure
        self.secondary_timeout = secondary_timeout
        self.max_backlog = max_backlog
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="sink-secondary")
        # health probes get their own threads: a secondary whose writes hang must not hang /health
        self._probes = ThreadPoolExecutor(max_workers=max(1, 2 * (len(self.children) - 1)),
                                          thread_name_prefix="sink-probe")

    # ---- writes -----------------------------------------------------------------
    def store_package(self, package: TelemetryPackage, *, receipt: str, body_bytes: int,
                      received_at: datetime) -> StoreResult:
        deadline = time.monotonic() + self.secondary_timeout
        kwargs = dict(receipt=receipt, body_bytes=body_bytes, received_at=received_at)
        pending = [(m, self._submit(m, "store_package", m.sink.store_package, package, **kwargs))
                   for m in self._members[1:]]
        try:
            return self.primary.store_package(package, **kwargs)
        finally:
            self._await(pending, deadline, package.package_id)

    def _submit(self, member: _Member, op: str, fn, *args, **kwargs) -> Future | None:
        with self._lock:
            if member.in_flight >= self.max_backlog:
                member.dropped += 1
                member.failure = (f"{op} dropped: {member.in_flight} writes still in flight "
                                  f"({member.dropped} dropped so far)")
                log.warning("sink.secondary_dropped", sink=member.name, op=op, dropped=member.dropped)
                return None
            member.in_flight += 1
        future = self._pool.submit(fn, *args, **kwargs)
        future.add_done_callback(lambda f: self._record(member, op, f))
        return future

    def _record(self, member: _Member, op: str, future: Future) -> None:
        exc = future.exception()
        with self._lock:
            member.in_flight -= 1
            if exc is None or isinstance(exc, InvalidPackageError):
                member.failure = None
                return
            member.failure = f"{op} failed: {type(exc).__name__}: {exc}"
        log.warning("sink.secondary_failed", sink=member.name, op=op, error=type(exc).__name__,
                    detail=str(exc)[:300])

    def _await(self, pending: list, deadline: float, package_id: str) -> None:
        for member, future in pending:
            if future is None:
                continue
            try:
                future.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                with self._lock:
                    member.failure = (f"store_package timed out after {self.secondary_timeout:g}s "
                                      "(still running in the background)")
                log.warning("sink.secondary_timeout", sink=member.name, package_id=package_id,
                            timeout_s=self.secondary_timeout)
            except Exception:  # noqa: S110 - recorded and logged by _record
                pass

    def purge_older_than(self, cutoff: datetime, batch_size: int = 5000) -> int:
        deleted = self.primary.purge_older_than(cutoff, batch_size)
        for member in self._members[1:]:
            try:
                member.sink.purge_older_than(cutoff, batch_size)
            except Exception as exc:
                with self._lock:
                    member.failure = f"purge failed: {type(exc).__name__}: {exc}"
                log.warning("sink.secondary_failed", sink=member.name, op="purge", error=type(exc).__name__)
        return deleted

    def migrate(self) -> int:
        version = self.primary.migrate()
        for member in self._members[1:]:
            member.sink.migrate()
        return version

    # ---- health -------------------------------------------------------------------
    def member_health(self) -> dict[str, SinkHealth]:
        """Each child's health by name (`primary:sqlite`, `secondary1:mysql`, …)."""
        out: dict[str, SinkHealth] = {}
        deadline = time.monotonic() + self.secondary_timeout
        probes = [self._probes.submit(m.sink.health) if m.index else None for m in self._members]
        for member, probe in zip(self._members, probes, strict=True):
            try:
                if probe is None:
                    health = member.sink.health()
                else:
                    health = probe.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                health = SinkHealth(ok=False, kind=member.sink.kind,
                                    detail=f"health probe timed out after {self.secondary_timeout:g}s")
            except Exception as exc:
                health = SinkHealth(ok=False, kind=member.sink.kind, detail=f"{type(exc).__name__}: {exc}")
            with self._lock:
                failure = member.failure
            if failure and health.ok:
                health = SinkHealth(ok=False, kind=health.kind, detail=f"degraded: {failure}")
            elif failure:
                health = SinkHealth(ok=False, kind=health.kind, detail=f"{health.detail}; {failure}")
            out[member.name] = health
        return out

    def health(self) -> SinkHealth:
        members = self.member_health()
        primary = members[self._members[0].name]
        bad = [name for name, h in members.items() if not h.ok and name != self._members[0].name]
        if not primary.ok:
            return SinkHealth(ok=False, kind=self.kind, detail=f"primary down: {primary.detail}")
        detail = f"degraded secondaries: {', '.join(bad)}" if bad else f"{len(members)} sinks ok"
        return SinkHealth(ok=True, kind=self.kind, detail=detail)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._probes.shutdown(wait=False, cancel_futures=True)
        for child in self.children:
            try:
                child.close()
            except Exception as exc:
                log.warning("sink.close_failed", sink=child.kind, error=str(exc))

    # ---- reads and keys: the primary ---------------------------------------------
    def stats(self):
        return self.primary.stats()

    def list_events(self, flt, page, per_page):
        return self.primary.list_events(flt, page, per_page)

    def aggregate(self, dimension, rng):
        return self.primary.aggregate(dimension, rng)

    def timeline(self, bucket, rng):
        return self.primary.timeline(bucket, rng)

    def recent_errors(self, limit):
        return self.primary.recent_errors(limit)

    def latency_summary(self, rng):
        return self.primary.latency_summary(rng)

    def sessions(self, rng, limit):
        return self.primary.sessions(rng, limit)

    def add_api_key(self, record):
        return self.primary.add_api_key(record)

    def find_api_key(self, key_hash):
        return self.primary.find_api_key(key_hash)

    def list_api_keys(self):
        return self.primary.list_api_keys()

    def revoke_api_key(self, key_id, revoked_at):
        return self.primary.revoke_api_key(key_id, revoked_at)

    def revoked_key_count(self):
        return self.primary.revoked_key_count()

