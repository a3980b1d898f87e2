"""The dashboard's answers, composed from a sink's breakdown queries (sinks/usage_types.py).

Pure functions of a Sink and a UsageFilter: per command (with the previous
period of equal length), per version and platform, the totals of a range
and the timeline under filters. What a filter cannot narrow is said where
it is answered (`Stats`: sessions and packages; percentiles: source and
platform).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from branchpy_telemetry.backend.sinks import rollups as R
from branchpy_telemetry.backend.sinks.base import Sink, Stats, TimelineBucket
from branchpy_telemetry.backend.sinks.usage_types import UsageFilter, UsageGroup
from branchpy_telemetry.client.contracts.timewindow import format_ts

PERCENTILES = (0.5, 0.95)


class PeriodStats(msgspec.Struct, kw_only=True):
    count: int
    errors: int
    error_rate: float | None  # errors / events that reported a status; None when none did
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None


class NameStats(msgspec.Struct, kw_only=True):
    category: str
    name: str
    count: int
    errors: int
    error_rate: float | None
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None
    previous: PeriodStats | None  # the same over the previous period (None: no previous period)


class NameReport(msgspec.Struct, kw_only=True):
    window_from: str | None
    window_to: str
    previous_from: str | None  # the period of equal length just before (None without `from`)
    previous_to: str | None
    items: list[NameStats]  # most events first


class KeyUsage(msgspec.Struct, kw_only=True):
    key: str
    events: int
    installs: int  # distinct installs over the days the range overlaps


class VersionDay(msgspec.Struct, kw_only=True):
    bucket: str  # start of the UTC day
    key: str
    events: int
    installs: int


class PlatformReport(msgspec.Struct, kw_only=True):
    os: list[KeyUsage]
    python: list[KeyUsage]


def error_rate(errors: int, with_status: int) -> float | None:
    return round(errors / with_status, 6) if with_status else None


def _period(sink: Sink, flt: UsageFilter) -> dict[tuple[str, str], tuple[UsageGroup, list]]:
    groups = sink.usage(flt, ("category", "name"))
    percentiles = sink.name_percentiles(flt, PERCENTILES)
    return {(g.key[0], g.key[1]): (g, percentiles.get((g.key[0], g.key[1]), [None, None])) for g in groups}


def name_report(sink: Sink, flt: UsageFilter, now: datetime) -> NameReport:
    end = flt.end or now
    current = _period(sink, flt)
    previous: dict | None = None
    prev_start = None
    if flt.start is not None:
        prev_start = flt.start - (end - flt.start)
        previous = _period(sink, msgspec.structs.replace(flt, start=prev_start, end=flt.start))
    items = []
    for (category, name), (g, (p50, p95)) in current.items():
        before = None
        if previous is not None:
            pg, (pp50, pp95) = previous.get((category, name), (None, (None, None)))
            before = PeriodStats(count=pg.events if pg else 0, errors=pg.errors if pg else 0,
                                 error_rate=error_rate(pg.errors, pg.with_status) if pg else None,
                                 p50_ms=pp50, p95_ms=pp95, max_ms=pg.dur_max if pg else None)
        items.append(NameStats(category=category, name=name, count=g.events, errors=g.errors,
                               error_rate=error_rate(g.errors, g.with_status), p50_ms=p50, p95_ms=p95,
                               max_ms=g.dur_max, previous=before))
    items.sort(key=lambda s: (-s.count, s.category, s.name))
    return NameReport(window_from=format_ts(flt.start) if flt.start else None, window_to=format_ts(end),
                      previous_from=format_ts(prev_start) if prev_start else None,
                      previous_to=format_ts(flt.start) if flt.start else None, items=items)


def key_usage(sink: Sink, flt: UsageFilter, column: str) -> list[KeyUsage]:
    """Events (every filter) and installs (the version and platform filters) per value of `column`."""
    events = {g.key[0]: g.events for g in sink.usage(flt, (column,))}
    installs = {c.key: c.installs for c in sink.install_counts(flt, column, False)}
    keys = sorted(events.keys() | installs.keys(), key=lambda k: (-events.get(k, 0), -installs.get(k, 0), k))
    return [KeyUsage(key=k, events=events.get(k, 0), installs=installs.get(k, 0)) for k in keys]


def version_days(sink: Sink, flt: UsageFilter) -> list[VersionDay]:
    events = {(g.bucket, g.key[0]): g.events for g in sink.usage(flt, ("version",), R.DAY)}
    installs = {(c.day, c.key): c.installs for c in sink.install_counts(flt, "version", True)}
    keys = sorted(events.keys() | installs.keys())
    return [VersionDay(bucket=R.hour_text(day), key=key, events=events.get((day, key), 0),
                       installs=installs.get((day, key), 0)) for day, key in keys]


def platform_report(sink: Sink, flt: UsageFilter) -> PlatformReport:
    return PlatformReport(os=key_usage(sink, flt, "os"), python=key_usage(sink, flt, "python"))


def stats_in_range(sink: Sink, flt: UsageFilter) -> Stats:
    """The cards over a range: events and errors under every filter, installs under the version and
    platform filters; sessions and packages under the range only (a session or a package is not of
    one command)."""
    (total,) = sink.usage(flt, ()) or [None]
    packages, last_upload = sink.uploads(flt.range)
    installs = sum(c.installs for c in sink.install_counts(flt, None, False))
    return Stats(events=total.events if total else 0, packages=packages,
                 sessions=sink.sessions(flt.range, 0).count, errors=total.errors if total else 0,
                 installs=installs, last_upload=last_upload)


def filtered_timeline(sink: Sink, flt: UsageFilter, bucket: int) -> list[TimelineBucket]:
    return [TimelineBucket(bucket=R.hour_text(g.bucket), count=g.events, errors=g.errors)
            for g in sink.usage(flt, (), bucket)]
