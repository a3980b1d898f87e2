"""SqlSink: the Sink contract over a DB-API connection, shared by SQLite and MySQL.

Subclasses provide connections (`_txn()` for a write transaction, `_read()`
for queries), the dialect, and which driver exceptions mean "retry the
transaction" (`_retry_cause`: a lost race, a deadlock, a certification
conflict). Writes run under the retry policy of write_retry.py; every driver
exception leaving a public method is translated to SinkError here: none
leaks to the API.

Dashboard queries read only the rollup tables (see rollups.py), summed over
their shards (shards.py); the events listing reads events through an index.
`trace()` records the statements a call runs, so tests can check each one's
query plan.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Literal

import structlog

from branchpy_telemetry.backend.sinks import compaction as C
from branchpy_telemetry.backend.sinks import histogram
from branchpy_telemetry.backend.sinks import rollups as R
from branchpy_telemetry.backend.sinks import sql_store as S
from branchpy_telemetry.backend.sinks import usage_queries as Q
from branchpy_telemetry.backend.sinks.base import (
    ApiKeyRecord,
    EventFilter,
    EventPage,
    KeyCount,
    LatencySummary,
    RecentError,
    SessionsSummary,
    Sink,
    SinkError,
    Stats,
    StoreResult,
    TimelineBucket,
    TimeRange,
)
from branchpy_telemetry.backend.sinks.error_groups import recent_error_groups
from branchpy_telemetry.backend.sinks.event_count import count_events, end_us, start_us, time_args, time_where
from branchpy_telemetry.backend.sinks.memory import row_to_stored_event, session_row, sessions_summary
from branchpy_telemetry.backend.sinks.shards import DEFAULT_WRITE_SHARDS, check_shards, shard_of
from branchpy_telemetry.backend.sinks.sql_cursor import TracingCursor, hour_where, where_clause
from branchpy_telemetry.backend.sinks.write_retry import RetryableWriteError, RetryPolicy, WriteRetrier
from branchpy_telemetry.client.contracts.event import SOURCES
from branchpy_telemetry.client.contracts.schema import TelemetryPackage

log = structlog.get_logger("backend.sinks")
_KEY_COLUMNS = "key_id, key_hash, scope, label, created_at, revoked_at"


class SqlSink(Sink):
    dialect: S.Dialect
    # SQLite has no index led by status: a status-only filter adds `source IN (all sources)`
    # (exact: source is a closed enum) so the (source, status, ts_us) index serves it.
    status_via_source = False
    # Index hint for a listing filtered by time only: MariaDB with stale statistics may choose a full
    # scan + filesort for `ORDER BY ts_us DESC, event_id DESC LIMIT n`; the ts index is always right.
    ts_index_hint = ""

    def __init__(self) -> None:
        self._schema_changes: list[str] = []  # what migrations did (Sink.schema_changes)
        self._trace: list | None = None
        self.write_shards = DEFAULT_WRITE_SHARDS
        self.write_retrier = WriteRetrier()

    def configure_writes(self, *, shards: int | None = None, policy: RetryPolicy | None = None) -> None:
        """How many shards this sink's uploads spread over; the retry policy of its writes."""
        if shards is not None:
            self.write_shards = check_shards(shards)
        if policy is not None:
            self.write_retrier = WriteRetrier(policy, self.write_retrier.stats)

    # ---- hooks ------------------------------------------------------------------
    def _txn(self) -> contextlib.AbstractContextManager[TracingCursor]:  # inside a write transaction
        raise NotImplementedError

    def _read(self) -> contextlib.AbstractContextManager[TracingCursor]:
        raise NotImplementedError

    def _retry_cause(self, exc: BaseException) -> str | None:
        """The write_retry cause when `exc` means "run the transaction again", else None."""
        return None

    driver_errors: tuple[type[BaseException], ...] = ()

    @contextlib.contextmanager
    def translate_errors(self, what: str, *, retry: bool = False) -> Iterator[None]:
        """Driver exception -> SinkError (or RetryableWriteError, inside a retried write transaction)."""
        try:
            yield
        except self.driver_errors as exc:
            cause = self._retry_cause(exc) if retry else None
            if cause is not None:
                raise RetryableWriteError(cause, f"{type(exc).__name__}: {exc}") from exc
            log.warning("sink.error", kind=self.kind, op=what, error=type(exc).__name__,
                        detail=str(exc)[:300])
            raise SinkError(f"{self.kind} sink failed during {what}: {type(exc).__name__}: {exc}") from exc

    @contextlib.contextmanager
    def trace(self) -> Iterator[list]:
        """Collect (sql, args) of every read statement run inside the block (tests: query plans)."""
        self._trace = []
        try:
            yield self._trace
        finally:
            self._trace = None

    def _write(self, what: str, fn, *, retry: bool = True):
        def attempt():
            with self.translate_errors(what, retry=retry), self._txn() as cur:
                return fn(cur)
        return self.write_retrier.run(what, attempt, sink=self.kind)

    def _query(self, what: str, fn):
        with self.translate_errors(what), self._read() as cur:
            return fn(cur)

    # ---- writes -----------------------------------------------------------------
    def store_package(self, package: TelemetryPackage, *, receipt: str, body_bytes: int,
                      received_at: datetime) -> StoreResult:
        rows = R.event_rows(package)
        shard = shard_of(package.package_id, self.write_shards)
        return self._write("store_package", lambda cur: S.store_package_rows(
            cur, self.dialect, package, rows, receipt=receipt, body_bytes=body_bytes,
            received_at=received_at, shard=shard))

    def _in_batches(self, what: str, batch, batch_size: int) -> int:
        """Run `batch(cur)` (it handles at most batch_size rows) in transactions until one handles fewer."""
        total = 0
        while True:
            n = self._write(what, batch)
            total += n
            if n < batch_size:
                return total

    def purge_older_than(self, cutoff: datetime, batch_size: int = 5000) -> int:
        cut_us = R.datetime_to_us(cutoff)
        total = self._in_batches("purge", lambda cur: S.purge_batch(cur, self.dialect, cut_us, batch_size),
                                 batch_size)
        self._write("purge", lambda cur: S.purge_aggregates(cur, self.dialect, cut_us))
        log.info("sink.purged", kind=self.kind, events=total, cutoff=R.us_to_text(cut_us))
        return total

    def compact(self, before: datetime, batch_size: int = 5000) -> int:
        before_us = R.datetime_to_us(before)
        total = self._in_batches("compact", lambda cur: C.compact_batch(cur, self.dialect, before_us,
                                                                        batch_size), batch_size)
        log.info("sink.compacted", kind=self.kind, rows=total, before=R.us_to_text(before_us))
        return total

    # ---- reads ------------------------------------------------------------------
    def stats(self) -> Stats:
        def run(cur):
            cur.execute("SELECT SUM(events), SUM(packages), SUM(errors), SUM(sessions), SUM(installs), "
                        "MAX(last_upload_us) FROM totals")
            ev, pk, err, ses, inst, last = (int(v or 0) for v in cur.fetchone())
            return Stats(events=ev, packages=pk, sessions=ses, errors=err, installs=inst,
                         last_upload=R.us_to_text(last) if last else None)
        return self._query("stats", run)

    def _event_fields_where(self, flt: EventFilter) -> tuple[list[str], list]:
        """The conditions on everything but time."""
        where, args = [], []
        if flt.status is not None and flt.source is None and self.status_via_source:
            where.append(f"source IN ({S.qmarks(len(SOURCES))})")
            args.extend(SOURCES)
        for col in ("category", "source", "name", "status", "session_id", "error_hash"):
            value = getattr(flt, col)
            if value is not None:
                where.append(f"{col} = ?")
                args.append(value)
        return where, args

    def list_events(self, flt: EventFilter, page: int, per_page: int) -> EventPage:
        R.check_page(page, per_page)
        fields_where, fields_args = self._event_fields_where(flt)
        lo, hi = start_us(flt), end_us(flt)
        where, args = fields_where + time_where(lo, hi), fields_args + time_args(lo, hi)
        hint = "" if fields_where else self.ts_index_hint  # filtered by time only

        def run(cur):
            cur.execute(f"SELECT {', '.join(R.EVENT_COLUMNS)} FROM events{hint}{where_clause(where)} "
                        "ORDER BY ts_us DESC, event_id DESC LIMIT ? OFFSET ?",
                        (*args, per_page, (page - 1) * per_page))
            items = [row_to_stored_event(r) for r in cur.fetchall()]
            if where:
                total = count_events(cur, flt, fields_where, fields_args)
            else:
                cur.execute("SELECT SUM(events) FROM totals")
                total = int(cur.fetchone()[0] or 0)
            return EventPage(items=items, page=page, per_page=per_page, total=total)
        return self._query("list_events", run)

    def aggregate(self, dimension: Literal["category", "source"], rng: TimeRange) -> list[KeyCount]:
        if dimension not in ("category", "source"):
            raise ValueError(f"unknown dimension {dimension!r}")
        where, args = hour_where("hour", *R.hour_range(rng))

        def run(cur):
            cur.execute(f"SELECT dkey, SUM(events) FROM rollup_dim{where_clause(['dim = ?', *where])} "
                        "GROUP BY dkey", (dimension, *args))
            rows = [(k, int(n)) for k, n in cur.fetchall() if n]
            return [KeyCount(key=k, count=n) for k, n in sorted(rows, key=lambda kv: (-kv[1], kv[0]))]
        return self._query("aggregate", run)

    def timeline(self, bucket: Literal["hour", "day"], rng: TimeRange) -> list[TimelineBucket]:
        size = {"hour": R.HOUR, "day": R.DAY}[bucket]
        where, args = hour_where("hour", *R.hour_range(rng))

        def run(cur):
            cur.execute(f"SELECT hour - (hour % {size}) AS b, SUM(events), SUM(errors) FROM rollup_hour"
                        f"{where_clause(where)} GROUP BY b ORDER BY b", tuple(args))
            return [TimelineBucket(bucket=R.hour_text(int(b)), count=int(n), errors=int(e))
                    for b, n, e in cur.fetchall() if n]
        return self._query("timeline", run)

    def recent_errors(self, limit: int) -> list[RecentError]:
        return self._query("recent_errors", lambda cur: recent_error_groups(cur, limit))

    def latency_summary(self, rng: TimeRange) -> LatencySummary:
        lo, hi = R.hour_range(rng)
        terms, hist_args = [], []
        for level, first, last in R.cover(lo, hi):
            where, args = hour_where("start", first, last)
            terms.append("(" + " AND ".join(["level = ?", *where]) + ")")
            hist_args += [level, *args]

        def run(cur):
            where, args = hour_where("hour", lo, hi)
            cur.execute(f"SELECT SUM(with_status), SUM(errors) FROM rollup_hour{where_clause(where)}",
                        tuple(args))
            total, errors = cur.fetchone()
            cur.execute(f"SELECT cum FROM hist WHERE {' OR '.join(terms)}", tuple(hist_args))
            blobs = [bytes(row[0]) for row in cur.fetchall()]
            return LatencySummary(total=int(total or 0), errors=int(errors or 0),
                                  p95_ms=histogram.percentile(blobs))
        return self._query("latency_summary", run)

    def sessions(self, rng: TimeRange, limit: int) -> SessionsSummary:
        lo, hi = R.hour_range(rng)

        def run(cur):
            where, args = hour_where("hour", lo, hi)
            cur.execute("SELECT SUM(sessions), SUM(duration_us), SUM(events) FROM session_hour"
                        f"{where_clause(where)}", tuple(args))
            count, dur, events = (int(v or 0) for v in cur.fetchone())
            where, args = hour_where("first_us", lo * 1_000_000 if lo is not None else None,
                                      hi * 1_000_000 if hi is not None else None)
            cur.execute("SELECT session_id, first_us, last_us, events, errors FROM sessions"
                        f"{where_clause(where)} ORDER BY first_us DESC, session_id DESC LIMIT ?",
                        (*args, max(0, limit)))
            items = [session_row(*row) for row in cur.fetchall()]
            return sessions_summary(count, dur, events, items)
        return self._query("sessions", run)

    # ---- breakdowns (usage.py) -------------------------------------------------------
    def usage(self, flt, group_by, bucket=None):
        return self._query("usage", lambda cur: Q.usage(cur, flt, group_by, bucket))

    def name_percentiles(self, flt, qs):
        return self._query("name_percentiles", lambda cur: Q.name_percentiles(cur, flt, qs))

    def install_counts(self, flt, group_by, by_day):
        return self._query("install_counts", lambda cur: Q.install_counts(cur, flt, group_by, by_day))

    def error_groups(self, flt, limit):
        return self._query("error_groups", lambda cur: Q.error_groups(cur, flt, limit))

    def uploads(self, rng):
        return self._query("uploads", lambda cur: Q.uploads(cur, rng))

    # ---- API keys -----------------------------------------------------------------
    def add_api_key(self, record: ApiKeyRecord) -> None:
        def run(cur):
            cur.execute(f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                        (record.key_id, record.key_hash, record.scope, record.label, record.created_at,
                         record.revoked_at))
        self._write("add_api_key", run, retry=False)  # a taken key_id or hash is an error, not a race

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        def run(cur):
            cur.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?", (key_hash,))
            row = cur.fetchone()
            return _key_record(row) if row else None
        return self._query("find_api_key", run)

    def list_api_keys(self) -> list[ApiKeyRecord]:
        def run(cur):
            cur.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id")
            return [_key_record(r) for r in cur.fetchall()]
        return self._query("list_api_keys", run)

    def revoke_api_key(self, key_id: str, revoked_at: datetime) -> bool:
        when = R.us_to_text(R.datetime_to_us(revoked_at))

        def run(cur):
            cur.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                        (when, key_id))
            return cur.rowcount == 1
        return self._write("revoke_api_key", run)

    def revoked_key_count(self) -> int:
        def run(cur):
            cur.execute("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NOT NULL")
            return int(cur.fetchone()[0])
        return self._query("revoked_key_count", run)


def _key_record(row) -> ApiKeyRecord:
    key_id, key_hash, scope, label, created_at, revoked_at = row
    return ApiKeyRecord(key_id=key_id, key_hash=key_hash, scope=scope, label=label, created_at=created_at,
                        revoked_at=revoked_at)
