"""MemorySink: a real in-memory implementation (tests, `--db memory://`).

Dicts behind one lock, fed by the same rollup code as the database sinks
(`rollups.py`), so it answers every query exactly like them. Nothing persists.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Literal

import msgspec

from branchpy_telemetry.backend.sinks import histogram
from branchpy_telemetry.backend.sinks import rollups as R
from branchpy_telemetry.backend.sinks import usage as U
from branchpy_telemetry.backend.sinks.base import (
    ApiKeyRecord,
    EventFilter,
    EventPage,
    KeyCount,
    LatencySummary,
    RecentError,
    SessionRow,
    SessionsSummary,
    SinkError,
    SinkHealth,
    Stats,
    StoredEvent,
    StoreResult,
    TimelineBucket,
    TimeRange,
)
from branchpy_telemetry.backend.sinks.base import Sink as _Sink
from branchpy_telemetry.backend.sinks.memory_usage import MemoryUsage
from branchpy_telemetry.client.contracts.schema import TelemetryPackage

_attrs_decoder = msgspec.json.Decoder(dict)


def row_to_stored_event(row: tuple) -> StoredEvent:
    """An event row (rollups.EVENT_COLUMNS order) -> the API's StoredEvent."""
    (event_id, package_id, ts, _ts_us, category, source, name, duration_ms, status, session_id,
     correlation_id, error_code, error_hash, attrs, governance_id) = row
    return StoredEvent(event_id=event_id, package_id=package_id, ts=ts, category=category,
                       source=source, name=name, duration_ms=duration_ms, status=status,
                       session_id=session_id, correlation_id=correlation_id, error_code=error_code,
                       error_hash=error_hash, attrs=_attrs_decoder.decode(attrs) if attrs else {},
                       governance_id=governance_id)


def sessions_summary(count: int, dur_us: int, events: int, items: list[SessionRow]) -> SessionsSummary:
    return SessionsSummary(count=count, avg_duration_ms=round(dur_us / count / 1000.0, 3) if count else 0.0,
                           avg_events=round(events / count, 3) if count else 0.0, items=items)


def session_row(sid: str, first_us: int, last_us: int, events: int, errors: int) -> SessionRow:
    return SessionRow(session_id=sid, first_ts=R.us_to_text(first_us), last_ts=R.us_to_text(last_us),
                      duration_ms=(last_us - first_us) / 1000.0, events=events, errors=errors)


def _in_hours(hour: int, lo: int | None, hi: int | None) -> bool:
    return (lo is None or hour >= lo) and (hi is None or hour < hi)


class MemorySink(MemoryUsage, _Sink):
    kind = "memory"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._init_usage()
        self._events: dict[str, tuple] = {}
        self._packages: dict[str, dict] = {}
        self._hours: dict[int, list] = {}  # hour -> [events, errors, with_status, dur_n, dur_sum]
        self._dims: dict[tuple, int] = {}  # (dim, hour, key) -> events
        self._hist: dict[tuple, bytes] = {}  # (level, block start) -> cumulative histogram
        self._sessions: dict[str, list] = {}
        self._session_hours: dict[int, list] = {}  # hour -> [sessions, duration_us, events]
        self._errors: dict[str, list] = {}
        self._installs: set[str] = set()
        self._totals = {"events": 0, "packages": 0, "errors": 0, "sessions": 0, "last_upload_us": 0}
        self._keys: dict[str, ApiKeyRecord] = {}

    # ---- writes ---------------------------------------------------------------

    def store_package(self, package: TelemetryPackage, *, receipt: str, body_bytes: int,
                      received_at: datetime) -> StoreResult:
        rows = R.event_rows(package)  # may raise InvalidPackageError: nothing written yet
        with self._lock:
            if package.package_id in self._packages:
                return StoreResult(package_id=package.package_id, accepted_events=0,
                                   duplicate_events=0, duplicate=True)
            new = [r for r in rows if r[0] not in self._events]
            received_us = R.datetime_to_us(received_at)
            self._packages[package.package_id] = {
                "receipt": receipt, "received_us": received_us, "governance_id": package.governance_id,
                "body_bytes": body_bytes, "event_count": len(package.summary.events),
                "branchpy_version": package.branchpy_version, "platform_os": package.platform.os}
            for r in new:
                self._events[r[0]] = r
            self._apply(R.compute_deltas(new))
            self._apply_usage(U.compute_usage(new), U.context_of(package), U.error_types(package),
                              received_us)
            if package.governance_id not in self._installs:
                self._installs.add(package.governance_id)
            t = self._totals
            t["packages"] += 1
            t["last_upload_us"] = max(t["last_upload_us"], received_us)
        return StoreResult(package_id=package.package_id, accepted_events=len(new),
                           duplicate_events=len(package.summary.events) - len(new), duplicate=False)

    def _apply(self, d: R.Deltas) -> None:
        for hour, delta in d.hours.items():
            cell = self._hours.setdefault(hour, [0, 0, 0, 0, 0.0])
            for i, v in enumerate(delta):
                cell[i] += v
        for key, n in d.dims.items():
            self._dims[key] = self._dims.get(key, 0) + n
        for key, counts in R.hist_blocks(d.hist).items():
            self._hist[key] = histogram.add_counts(self._hist.get(key), counts)
        for sid, contrib in d.sessions.items():
            old = self._sessions.get(sid)
            merged = R.merge_session(old, contrib)
            self._sessions[sid] = merged
            if old is None:
                self._totals["sessions"] += 1
            for hour, dc, ddur, dev in R.session_hourly_deltas(old, merged):
                cell = self._session_hours.setdefault(hour, [0, 0, 0])
                cell[0] += dc
                cell[1] += ddur
                cell[2] += dev
        for ehash, contrib in d.errors.items():
            self._errors[ehash] = R.merge_error(self._errors.get(ehash), contrib)
        self._totals["events"] += d.events
        self._totals["errors"] += d.error_events

    def purge_older_than(self, cutoff: datetime, batch_size: int = 5000) -> int:
        cut_us = R.datetime_to_us(cutoff)
        cut_hour_s = cut_us // 1_000_000
        with self._lock:
            old = [k for k, r in self._events.items() if r[3] < cut_us]
            for k in old:
                r = self._events.pop(k)
                self._totals["events"] -= 1
                self._totals["errors"] -= 1 if r[8] == "error" else 0
            for hour in [h for h in self._hours if h + R.HOUR <= cut_hour_s]:
                del self._hours[hour]
            for key in [k for k in self._dims if k[1] + R.HOUR <= cut_hour_s]:
                del self._dims[key]
            for key in [k for k in self._hist if k[1] + k[0] <= cut_hour_s]:
                del self._hist[key]
            for hour in [h for h in self._session_hours if h + R.HOUR <= cut_hour_s]:
                del self._session_hours[hour]
            gone = [s for s, v in self._sessions.items() if v[1] < cut_us]
            for sid in gone:
                del self._sessions[sid]
            self._totals["sessions"] -= len(gone)
            for ehash in [h for h, v in self._errors.items() if v[3] < cut_us]:
                del self._errors[ehash]
            self._purge_usage(cut_hour_s)
        return len(old)

    # ---- reads ----------------------------------------------------------------

    def health(self) -> SinkHealth:
        return SinkHealth(ok=True, kind=self.kind)

    def stats(self) -> Stats:
        with self._lock:
            t = dict(self._totals)
            installs = len(self._installs)
        return Stats(events=t["events"], packages=t["packages"], sessions=t["sessions"],
                     errors=t["errors"], installs=installs,
                     last_upload=R.us_to_text(t["last_upload_us"]) if t["last_upload_us"] else None)

    def list_events(self, flt: EventFilter, page: int, per_page: int) -> EventPage:
        R.check_page(page, per_page)
        start = R.datetime_to_us(flt.start) if flt.start else None
        end = R.datetime_to_us(flt.end) if flt.end else None
        checks = [(i, v) for i, v in ((4, flt.category), (5, flt.source), (6, flt.name), (8, flt.status),
                                      (9, flt.session_id), (12, flt.error_hash)) if v is not None]
        with self._lock:
            rows = [r for r in self._events.values()
                    if all(r[i] == v for i, v in checks)
                    and (start is None or r[3] >= start) and (end is None or r[3] < end)]
        rows.sort(key=lambda r: (r[3], r[0]), reverse=True)
        offset = (page - 1) * per_page
        return EventPage(items=[row_to_stored_event(r) for r in rows[offset:offset + per_page]],
                         page=page, per_page=per_page, total=len(rows))

    def aggregate(self, dimension: Literal["category", "source"], rng: TimeRange) -> list[KeyCount]:
        lo, hi = R.hour_range(rng)
        counts: dict[str, int] = {}
        with self._lock:
            for (dim, hour, key), n in self._dims.items():
                if dim == dimension and _in_hours(hour, lo, hi):
                    counts[key] = counts.get(key, 0) + n
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return [KeyCount(key=k, count=c) for k, c in ordered if c]

    def timeline(self, bucket: Literal["hour", "day"], rng: TimeRange) -> list[TimelineBucket]:
        size = {"hour": R.HOUR, "day": R.DAY}[bucket]
        lo, hi = R.hour_range(rng)
        out: dict[int, list[int]] = {}
        with self._lock:
            for hour, cell in self._hours.items():
                if _in_hours(hour, lo, hi):
                    b = out.setdefault(hour - hour % size, [0, 0])
                    b[0] += cell[0]
                    b[1] += cell[1]
        return [TimelineBucket(bucket=R.hour_text(b), count=v[0], errors=v[1])
                for b, v in sorted(out.items()) if v[0]]

    def recent_errors(self, limit: int) -> list[RecentError]:
        with self._lock:
            groups = sorted(self._errors.items(), key=lambda kv: (kv[1][3], kv[0]), reverse=True)
        groups = groups[:max(0, limit)]
        return [RecentError(error_hash=h, error_code=v[0], name=v[1], count=v[2],
                            last_seen=R.us_to_text(v[3])) for h, v in groups]

    def latency_summary(self, rng: TimeRange) -> LatencySummary:
        lo, hi = R.hour_range(rng)
        total = errors = 0
        with self._lock:
            for hour, cell in self._hours.items():
                if _in_hours(hour, lo, hi):
                    total += cell[2]
                    errors += cell[1]
            blocks = R.cover(lo, hi)
            hist = [blob for k, blob in self._hist.items()
                    if any(k[0] == level and _in_hours(k[1], a, b) for level, a, b in blocks)]
        return LatencySummary(total=total, errors=errors, p95_ms=histogram.percentile(hist))

    def sessions(self, rng: TimeRange, limit: int) -> SessionsSummary:
        lo, hi = R.hour_range(rng)
        count = dur = events = 0
        with self._lock:
            for hour, (c, d, e) in self._session_hours.items():
                if _in_hours(hour, lo, hi):
                    count, dur, events = count + c, dur + d, events + e
            lo_us = lo * 1_000_000 if lo is not None else None
            hi_us = hi * 1_000_000 if hi is not None else None
            chosen = [(sid, v) for sid, v in self._sessions.items()
                      if (lo_us is None or v[0] >= lo_us) and (hi_us is None or v[0] < hi_us)]
        chosen.sort(key=lambda kv: (kv[1][0], kv[0]), reverse=True)
        items = [session_row(sid, *v) for sid, v in chosen[:max(0, limit)]]
        return sessions_summary(count, dur, events, items)

    # ---- API keys -------------------------------------------------------------

    def add_api_key(self, record: ApiKeyRecord) -> None:
        with self._lock:
            if record.key_id in self._keys or self.find_api_key(record.key_hash):
                raise SinkError(f"memory sink: api key {record.key_id!r} (or its hash) already exists")
            self._keys[record.key_id] = record

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        with self._lock:
            for rec in self._keys.values():
                if rec.key_hash == key_hash:
                    return rec
        return None

    def list_api_keys(self) -> list[ApiKeyRecord]:
        with self._lock:
            return sorted(self._keys.values(), key=lambda r: (r.created_at, r.key_id))

    def revoke_api_key(self, key_id: str, revoked_at: datetime) -> bool:
        with self._lock:
            rec = self._keys.get(key_id)
            if rec is None or rec.revoked_at is not None:
                return False
            when = R.us_to_text(R.datetime_to_us(revoked_at))
            self._keys[key_id] = msgspec.structs.replace(rec, revoked_at=when)
            return True

    def revoked_key_count(self) -> int:
        with self._lock:
            return sum(1 for rec in self._keys.values() if rec.revoked_at is not None)
