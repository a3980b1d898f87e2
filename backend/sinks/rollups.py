"""Aggregates maintained at ingest, shared by every sink.

The dashboard queries never scan events: each stored package updates, in the
same transaction as its events,

- an hourly rollup keyed by hour (events, errors, events with a status,
  duration count and sum) and a per-dimension one keyed (category|source,
  hour, key) -> events: narrow keys, so their size grows with time, not
  with the number of events;
- a duration histogram (histogram.py: p95 within ~2.5 %) per day, per 6
  hours and per hour; a range reads whole days in the middle and 6-hour and
  hour blocks only at its edges (`cover`), so its cost depends on the
  range's length, not on how many events it holds;
- a sessions row per session (first/last ts, events, errors) and an hourly
  session rollup keyed by the hour of the session's first event;
- an error group per error_hash (code, name, count, last seen; the latest
  sighting by (ts, event_id) names it, whatever order packages arrive in);
- the totals (events, packages, errors, sessions, installs, last upload).

The SQL sinks stripe every one of these rows but the sessions' (shards.py):
an upload writes its package's shard, reads sum over all of them.

Precision: rollup-backed queries (aggregate, timeline, latency, sessions)
work on whole hours. A range [start, end) counts every hour bucket that
overlaps it: [floor_hour(start), ceil_hour(end)). The events listing filters
exact timestamps. "error" means an event whose status is "error".

Every sink computes its deltas with these functions, so the answers agree.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import msgspec

from branchpy_telemetry.backend.sinks import histogram
from branchpy_telemetry.backend.sinks.base import InvalidPackageError, TimeRange
from branchpy_telemetry.client.contracts.schema import TelemetryPackage
from branchpy_telemetry.client.contracts.timewindow import format_ts

HOUR = 3600
DAY = 86400
HIST_LEVELS = (DAY, 6 * HOUR, HOUR)  # histogram block sizes, largest first
_US = 1_000_000
_attrs_encoder = msgspec.json.Encoder()

# Column order of an event row, shared by every sink (and the SQL schemas).
EVENT_COLUMNS = ("event_id", "package_id", "ts", "ts_us", "category", "source", "name", "duration_ms",
                 "status", "session_id", "correlation_id", "error_code", "error_hash", "attrs",
                 "governance_id")
EventRow = tuple


# ---- time -------------------------------------------------------------------

def ts_to_us(ts: str) -> int:
    """An ISO-8601 event timestamp -> epoch microseconds (naive = UTC)."""
    return datetime_to_us(datetime.fromisoformat(ts))


def datetime_to_us(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _ONE_US


def us_to_text(us: int) -> str:
    return format_ts(datetime.fromtimestamp(us / _US, UTC).replace(microsecond=us % _US))


def hour_text(hour: int) -> str:
    return format_ts(datetime.fromtimestamp(hour, UTC))


def hour_of(us: int) -> int:
    seconds = us // _US
    return seconds - seconds % HOUR


def check_page(page: int, per_page: int) -> None:
    """Pages start at 1; the API caps per_page (500) before it gets here."""
    if page < 1 or per_page < 1:
        raise ValueError(f"page ({page}) and per_page ({per_page}) must be >= 1")


def hour_range(rng: TimeRange) -> tuple[int | None, int | None]:
    """[first hour, end hour) in epoch seconds covering every hour the range overlaps."""
    lo = hour_of(datetime_to_us(rng.start)) if rng.start else None
    hi = None
    if rng.end:
        end_us = datetime_to_us(rng.end)
        hi = hour_of(end_us) + (HOUR if end_us % (HOUR * _US) else 0)
    return lo, hi


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


# ---- package -> rows and deltas ----------------------------------------------

def event_rows(package: TelemetryPackage) -> list[EventRow]:
    """The package's events as rows (first occurrence of a repeated event_id wins).
    Raises InvalidPackageError for a timestamp that is not ISO-8601."""
    rows: list[EventRow] = []
    seen: set[str] = set()
    pid, gid = package.package_id, package.governance_id
    parse, encode, epoch = datetime.fromisoformat, _attrs_encoder.encode, _EPOCH
    add, append = seen.add, rows.append
    for i, ev in enumerate(package.summary.events):  # hot loop: inlined on purpose
        event_id, ts = ev.event_id, ev.ts
        if event_id in seen:
            continue
        add(event_id)
        try:
            value = parse(ts)
        except ValueError:
            raise InvalidPackageError(f"event {i} has an invalid ts (not ISO-8601)",
                                      pointer=f"/summary/events/{i}/ts") from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        d = value - epoch  # exact integer microseconds (same as `// _ONE_US`, without the division)
        attrs = ev.attrs
        append((event_id, pid, ts, (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds,
                ev.category, ev.source, ev.name, ev.duration_ms, ev.status, ev.session_id, ev.correlation_id,
                ev.error_code, ev.error_hash, encode(attrs).decode() if attrs else "{}", gid))
    return rows


class Deltas(msgspec.Struct):
    """What one batch of new events adds to the aggregates. Rollups are narrow
    (one dimension each) so their row count grows with time, not with events."""
    hours: dict  # hour -> [events, errors, with_status, dur_n, dur_sum]
    dims: dict  # (dim "category"|"source", hour, key) -> events
    hist: dict  # hour -> {bucket: count}   (hist_blocks() derives every block size)
    sessions: dict  # session_id -> [first_us, last_us, events, errors]
    errors: dict  # error_hash -> [error_code, name, count, last_us, last_event_id]
    events: int
    error_events: int


def compute_deltas(rows: list[EventRow]) -> Deltas:
    """Order-independent: the error group's name/code come from its latest (ts, event_id).

    The hot loop of ingest (once per event). Events arrive mostly in time order, so the
    current hour's cells (hourly row, per-category and per-source counts, histogram) are
    kept at hand and looked up again only when an event falls outside that hour."""
    hours: dict = {}
    by_cat: dict = {}  # hour -> {category: events}
    by_src: dict = {}  # hour -> {source: events}
    hist: dict = {}
    sessions: dict = {}
    errors: dict = {}
    n_err = 0
    hour_us = HOUR * _US
    floor_ms, last_bucket, log, log_floor, log_ratio = (histogram.FLOOR_MS, histogram.SIZE - 1, math.log,
                                                        histogram.LOG_FLOOR, histogram.LOG_RATIO)
    lo, hi = 1, 0  # [lo, hi): the current hour in microseconds (empty at first)
    hour = 0
    cell: list = []
    cats: dict = {}
    srcs: dict = {}
    counts: dict | None = None
    for event_id, _, _, ts_us, cat, src, name, dur, status, sid, _, code, ehash, _, _ in rows:
        if not lo <= ts_us < hi:
            lo = ts_us - ts_us % hour_us
            hi = lo + hour_us
            hour = lo // _US
            cell = hours.get(hour)
            if cell is None:
                cell = hours[hour] = [0, 0, 0, 0, 0.0]
                cats = by_cat[hour] = {}
                srcs = by_src[hour] = {}
            else:
                cats, srcs = by_cat[hour], by_src[hour]
            counts = hist.get(hour)
        is_err = 1 if status == "error" else 0
        cell[0] += 1
        if is_err:
            n_err += 1
            cell[1] += 1
        if status:
            cell[2] += 1
        cats[cat] = cats.get(cat, 0) + 1
        srcs[src] = srcs.get(src, 0) + 1
        if dur is not None:
            cell[3] += 1
            cell[4] += dur
            if counts is None:
                counts = hist[hour] = {}
            # histogram.bucket_of, inlined
            bucket = 0 if dur <= floor_ms else min(last_bucket, 1 + int((log(dur) - log_floor) / log_ratio))
            counts[bucket] = counts.get(bucket, 0) + 1
        if sid:
            s = sessions.get(sid)
            if s is None:
                sessions[sid] = [ts_us, ts_us, 1, is_err]
            else:
                if ts_us < s[0]:
                    s[0] = ts_us
                elif ts_us > s[1]:
                    s[1] = ts_us
                s[2] += 1
                s[3] += is_err
        if ehash:
            e = errors.get(ehash)
            if e is None:
                errors[ehash] = [code, name, 1, ts_us, event_id]
            else:
                e[2] += 1
                if ts_us > e[3] or (ts_us == e[3] and event_id >= e[4]):
                    e[0], e[1], e[3], e[4] = code, name, ts_us, event_id
    dims = {("category", h, k): n for h, keyed in by_cat.items() for k, n in keyed.items()}
    dims.update({("source", h, k): n for h, keyed in by_src.items() for k, n in keyed.items()})
    return Deltas(hours, dims, hist, sessions, errors, len(rows), n_err)


def hist_blocks(hist: dict) -> dict:
    """{hour: {bucket: count}} -> {(level, block start): {bucket: count}} for every HIST_LEVELS size."""
    out: dict = {}
    for hour, counts in hist.items():
        for level in HIST_LEVELS:
            if level == HOUR:
                out[(HOUR, hour)] = counts
                continue
            block = out.setdefault((level, hour - hour % level), {})
            for bucket, n in counts.items():
                block[bucket] = block.get(bucket, 0) + n
    return out


def cover(lo: int | None, hi: int | None, levels: tuple[int, ...] = HIST_LEVELS) -> list[tuple]:
    """Cover the hour range [lo, hi) with the fewest histogram blocks: (level, first start,
    end start) triples, largest blocks in the middle, smaller ones only at the edges."""
    size, rest = levels[0], levels[1:]
    if not rest:
        return [(size, lo, hi)]
    first = None if lo is None else -(-lo // size) * size
    last = None if hi is None else hi - hi % size
    if first is not None and last is not None and first >= last:
        return cover(lo, hi, rest)
    out = [(size, first, last)]
    if lo is not None and lo < first:
        out += cover(lo, first, rest)
    if hi is not None and last < hi:
        out += cover(last, hi, rest)
    return out


def merge_session(old: list | None, new: list) -> list:
    """[first_us, last_us, events, errors] after adding `new` to `old`."""
    if old is None:
        return list(new)
    return [min(old[0], new[0]), max(old[1], new[1]), old[2] + new[2], old[3] + new[3]]


def session_hourly_deltas(old: list | None, merged: list) -> list[tuple[int, int, int, int]]:
    """(hour of first event, d_sessions, d_duration_us, d_events) moving a session's
    contribution from its old state to its merged state (integers: exact in every sink)."""
    out = []
    if old is not None:
        out.append((hour_of(old[0]), -1, -(old[1] - old[0]), -old[2]))
    out.append((hour_of(merged[0]), 1, merged[1] - merged[0], merged[2]))
    return out


def merge_error(old: list | None, new: list) -> list:
    """[error_code, name, count, last_us, last_event_id]: the latest sighting by
    (last_us, last_event_id) names the group (order-independent)."""
    if old is None:
        return list(new)
    latest = new if (new[3], new[4]) >= (old[3], old[4]) else old
    return [latest[0], latest[1], old[2] + new[2], latest[3], latest[4]]
