"""CompositeSink: fan-out to several sinks (several `--db`); the first is primary.

Failure policy, stated once:
- The primary's answer (or its SinkError) is the answer, and it is never
  kept waiting for a secondary: once the primary has stored a package, the
  package is recorded for every secondary in the SecondaryBacklog (on disk)
  and handed to a small thread pool; the upload returns without waiting.
- A secondary's write that succeeds removes its backlog row. One that fails,
  or is not attempted because `max_in_flight` writes to that secondary are
  already running (a hung server), leaves the row; a catch-up thread per
  secondary delivers the backlog oldest first, backing off while the
  secondary keeps failing, and after a restart too. Nothing is dropped.
- A package the primary already had (a re-delivery) is forwarded again, so a
  crash between the primary's commit and the backlog write heals on the
  client's retry (every sink is idempotent on package_id and event_id).
- Health: a secondary that fails is `down`; one with packages still to
  receive is `behind`, with the count, until it has caught up. Its probe
  runs on its own threads with `probe_timeout`.
- Reads, API keys and the answer of `purge` come from the primary.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
import structlog

from branchpy_telemetry.backend.sinks.base import InvalidPackageError, Sink, SinkHealth, StoreResult
from branchpy_telemetry.backend.sinks.composite_backlog import PendingPackage, SecondaryBacklog
from branchpy_telemetry.client.contracts.schema import TelemetryPackage, package_decoder, package_encoder
from branchpy_telemetry.client.contracts.timewindow import format_ts, parse_time

log = structlog.get_logger("backend.sinks.composite")

# A catch-up thread with nothing to do looks again this often (another process may add rows).
IDLE_POLL_S = 5.0


def sink_identity(sink: Sink, index: int) -> str:
    """A name for a secondary that survives restarts and reordering: its URL without password
    or options, or its file path; a sink with neither (memory) is named by its position."""
    url = getattr(sink, "url", None)
    if url:
        parts = urlsplit(url)
        user = f"{parts.username}@" if parts.username else ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{user}{parts.hostname or ''}{port}{parts.path}"
    path = getattr(sink, "path", None)
    if path:
        return f"{sink.kind}:{Path(path).resolve()}"
    return f"{sink.kind}#{index}"


class _Member:
    def __init__(self, index: int, sink: Sink):
        self.index, self.sink = index, sink
        self.name = f"secondary{index}:{sink.kind}" if index else f"primary:{sink.kind}"
        self.identity = sink_identity(sink, index)
        self.live: dict[int, float] = {}  # backlog row -> when a live write began delivering it
        self.in_flight = 0
        self.unrecorded_misses = 0  # packages missed that the backlog could not record
        self.failure: str | None = None  # last write failure, cleared by a later success
        self.wake = threading.Event()


class CompositeSink(Sink):
    kind = "composite"

    def __init__(self, children: list[Sink], *, backlog: SecondaryBacklog | None = None,
                 probe_timeout: float = 2.0, max_in_flight: int = 16, max_workers: int = 4,
                 retry_cap_s: float = 30.0, failures: dict[int, str] | None = None):
        if not children:
            raise ValueError("CompositeSink needs at least one child")
        self.children = list(children)
        self.primary = self.children[0]
        self._members = [_Member(i, s) for i, s in enumerate(self.children)]
        self._secondaries = self._members[1:]
        for index, failure in (failures or {}).items():
            self._members[index].failure = failure
        self.probe_timeout = probe_timeout
        self.max_in_flight = max_in_flight
        self.retry_cap_s = retry_cap_s
        self._backlog = backlog or SecondaryBacklog()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="sink-secondary")
        # health probes get their own threads: a secondary whose writes hang must not hang /health
        self._probes = ThreadPoolExecutor(max_workers=max(1, 2 * len(self._secondaries)),
                                          thread_name_prefix="sink-probe")
        self._report_orphans()
        self._catch_up_threads = [threading.Thread(target=self._catch_up, args=(m,), daemon=True,
                                                   name=f"catch-up-{m.name}") for m in self._secondaries]
        for thread in self._catch_up_threads:
            thread.start()

    def _report_orphans(self) -> None:
        configured = {m.identity for m in self._secondaries}
        for identity, count in self._backlog.members().items():
            if identity not in configured:
                log.warning("sink.backlog_orphaned", secondary=identity, packages=count)

    # ---- writes -----------------------------------------------------------------
    def store_package(self, package: TelemetryPackage, *, receipt: str, body_bytes: int,
                      received_at: datetime) -> StoreResult:
        result = self.primary.store_package(package, receipt=receipt, body_bytes=body_bytes,
                                            received_at=received_at)
        if self._secondaries:
            self._forward(package, receipt, body_bytes, received_at)
        return result

    def _forward(self, package: TelemetryPackage, receipt: str, body_bytes: int,
                 received_at: datetime) -> None:
        try:
            seqs = self._backlog.add([m.identity for m in self._secondaries], package.package_id,
                                     package_encoder.encode(package), receipt=receipt, body_bytes=body_bytes,
                                     received_at=format_ts(received_at))
        except Exception as exc:  # the local disk: the live writes below are all that is left
            log.error("sink.backlog_write_failed", package_id=package.package_id, error=type(exc).__name__,
                      detail=str(exc)[:300])
            seqs = {}
        for member in self._secondaries:
            seq = seqs.get(member.identity)
            with self._lock:
                if member.in_flight >= self.max_in_flight:
                    if seq is None:
                        member.unrecorded_misses += 1
                    continue  # the catch-up thread has it
                member.in_flight += 1
                if seq is not None:
                    member.live[seq] = time.monotonic()
            future = self._pool.submit(member.sink.store_package, package, receipt=receipt,
                                       body_bytes=body_bytes, received_at=received_at)
            future.add_done_callback(lambda f, m=member, s=seq: self._live_write_done(m, s, f))

    def _live_write_done(self, member: _Member, seq: int | None, future: Future) -> None:
        cancelled = future.cancelled()  # closing: the row stays for the next start
        exc = None if cancelled else future.exception()
        with self._lock:
            member.in_flight -= 1
            member.live.pop(seq, None)
        if not cancelled and (exc is None or isinstance(exc, InvalidPackageError)):
            self._delivered(member, seq, exc)
            return
        with self._lock:
            if seq is None:
                member.unrecorded_misses += 1
            if exc is not None:
                member.failure = f"store_package failed: {type(exc).__name__}: {exc}"
        if exc is not None:
            log.warning("sink.secondary_failed", sink=member.name, error=type(exc).__name__,
                        detail=str(exc)[:300])
            member.wake.set()  # the catch-up thread owns the row now

    def _delivered(self, member: _Member, seq: int | None, refused: BaseException | None) -> None:
        if refused is not None:  # the secondary cannot store it, now or ever: do not retry it
            log.warning("sink.secondary_refused_package", sink=member.name, detail=str(refused)[:300])
        with self._lock:
            recovered = member.failure is not None
            member.failure = None
        if recovered:
            member.wake.set()  # it answers again: the catch-up thread need not wait out its backoff
        if seq is not None:
            try:
                self._backlog.remove(seq)
            except Exception as exc:  # the row stays: delivered once more later, harmlessly
                log.warning("sink.backlog_remove_failed", sink=member.name, error=type(exc).__name__)

    def _catch_up(self, member: _Member) -> None:
        """Deliver the member's backlog, oldest first; back off while it keeps failing."""
        delay = 0.0
        while not self._closing.is_set():
            with self._lock:
                live = set(member.live)
            try:
                rows = self._backlog.oldest(member.identity, live)
            except Exception as exc:
                log.warning("sink.backlog_read_failed", sink=member.name, error=type(exc).__name__)
                rows = []
            if not rows:
                member.wake.wait(IDLE_POLL_S)
                member.wake.clear()
                continue
            for row in rows:
                if self._closing.is_set() or not self._deliver_pending(member, row):
                    delay = min(self.retry_cap_s, max(0.5, delay * 2))
                    member.wake.wait(delay)  # a live write or a probe that succeeds cuts the wait short
                    member.wake.clear()
                    break
                delay = 0.0

    def _deliver_pending(self, member: _Member, row: PendingPackage) -> bool:
        try:
            package = package_decoder.decode(row.body)
            member.sink.store_package(package, receipt=row.receipt, body_bytes=row.body_bytes,
                                      received_at=parse_time(row.received_at))
        except (InvalidPackageError, msgspec.DecodeError) as exc:
            self._delivered(member, row.seq, exc)
            return True
        except Exception as exc:
            with self._lock:
                member.failure = f"catch-up failed: {type(exc).__name__}: {exc}"
            log.warning("sink.secondary_catch_up_failed", sink=member.name, package_id=row.package_id,
                        error=type(exc).__name__, detail=str(exc)[:300])
            return False
        self._delivered(member, row.seq, None)
        log.info("sink.secondary_caught_up_package", sink=member.name, package_id=row.package_id)
        return True

    def flush(self, timeout: float) -> bool:
        """Wait until every secondary has its backlog (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        for member in self._secondaries:
            member.wake.set()
        while any(self._backlog.count(m.identity) for m in self._secondaries):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def purge_older_than(self, cutoff: datetime, batch_size: int = 5000) -> int:
        deleted = self.primary.purge_older_than(cutoff, batch_size)
        for member in self._secondaries:
            try:
                member.sink.purge_older_than(cutoff, batch_size)
            except Exception as exc:
                with self._lock:
                    member.failure = f"purge failed: {type(exc).__name__}: {exc}"
                log.warning("sink.secondary_failed", sink=member.name, op="purge", error=type(exc).__name__)
        return deleted

    def migrate(self) -> int:
        version = self.primary.migrate()
        for member in self._secondaries:
            member.sink.migrate()
        return version

    # ---- health -------------------------------------------------------------------
    def member_health(self) -> dict[str, SinkHealth]:
        """Each child's health by name (`primary:sqlite`, `secondary1:mysql`, …)."""
        deadline = time.monotonic() + self.probe_timeout
        probes = {m.index: self._probes.submit(m.sink.health) for m in self._secondaries}
        out = {self._members[0].name: self._probe_primary()}
        for member in self._secondaries:
            try:
                health = probes[member.index].result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                health = SinkHealth(ok=False, kind=member.sink.kind,
                                    detail=f"health probe timed out after {self.probe_timeout:g}s")
            except Exception as exc:
                health = SinkHealth(ok=False, kind=member.sink.kind, detail=f"{type(exc).__name__}: {exc}")
            out[member.name] = self._secondary_health(member, health)
        return out

    def _probe_primary(self) -> SinkHealth:
        try:
            return self.primary.health()
        except Exception as exc:
            return SinkHealth(ok=False, kind=self.primary.kind, detail=f"{type(exc).__name__}: {exc}")

    def _secondary_health(self, member: _Member, probe: SinkHealth) -> SinkHealth:
        """Behind: the backlog, less the live writes still young enough to be a normal write."""
        young = time.monotonic() - self.probe_timeout
        with self._lock:
            failure, misses = member.failure, member.unrecorded_misses
            live = sum(1 for started in member.live.values() if started > young)
        try:
            behind = max(0, self._backlog.count(member.identity) - live)
        except Exception as exc:
            behind, failure = 0, f"backlog unreadable: {type(exc).__name__}"
        if probe.ok and behind:
            member.wake.set()
        problems = [p for p in (None if probe.ok else probe.detail, failure,
                                f"{misses} package(s) missed and not recorded" if misses else None) if p]
        ok = probe.ok and not problems
        state = probe.state if probe.state and not probe.ok else ("down" if not ok else
                                                                  "behind" if behind else "ok")
        detail = "; ".join(problems) or (f"{behind} package(s) to catch up" if behind else probe.detail)
        return SinkHealth(ok=ok, kind=probe.kind, state=state, behind=behind, detail=detail)

    def health(self) -> SinkHealth:
        members = self.member_health()
        primary = members[self._members[0].name]
        bad = [name for name, h in list(members.items())[1:] if not h.ok or h.behind]
        if not primary.ok:
            return SinkHealth(ok=False, kind=self.kind, detail=f"primary down: {primary.detail}")
        detail = f"degraded secondaries: {', '.join(bad)}" if bad else f"{len(members)} sinks ok"
        return SinkHealth(ok=True, kind=self.kind, detail=detail)

    def close(self, live_writes_timeout: float = 5.0) -> None:
        """Let running secondary writes finish (bounded); whatever is left stays in the backlog."""
        self._closing.set()
        for member in self._secondaries:
            member.wake.set()
        deadline = time.monotonic() + live_writes_timeout
        while any(m.in_flight for m in self._secondaries) and time.monotonic() < deadline:
            time.sleep(0.01)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._probes.shutdown(wait=False, cancel_futures=True)
        for thread in self._catch_up_threads:
            thread.join(timeout=1.0)  # a thread stuck on a hung server is a daemon: it dies with us
        for child in self.children:
            try:
                child.close()
            except Exception as exc:
                log.warning("sink.close_failed", sink=child.kind, error=str(exc))
        self._backlog.close()

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

    def usage(self, flt, group_by, bucket=None):
        return self.primary.usage(flt, group_by, bucket)

    def name_percentiles(self, flt, qs):
        return self.primary.name_percentiles(flt, qs)

    def install_counts(self, flt, group_by, by_day):
        return self.primary.install_counts(flt, group_by, by_day)

    def error_groups(self, flt, limit):
        return self.primary.error_groups(flt, limit)

    def uploads(self, rng):
        return self.primary.uploads(rng)

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
