"""How dashboard query cost grows with data.

Every dashboard query (stats, aggregates, timeline, recent errors, SLO
latency summary, sessions) is timed on a sink holding 10,000 events and on
one holding 1,000,000 events, in the same run. Both data sets span the same
30 days (so the big one is 100x denser, with 100x the sessions). Target:
<= 3x slower at 100x the data (goal: flat) — the queries read rollups kept
at ingest, never the events table. Loading goes through the sink's normal
store path (10,000-event packages), so it also measures bulk ingest; then,
as the daily `purge` does in production, the striped aggregate rows older
than a day are folded into one row per key (sinks/compaction.py).

    BRANCHPY_BENCH=full .venv/bin/python -m pytest tests/bench/test_bench_queries.py -s -q
"""

from __future__ import annotations

import contextlib
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import pytest

from branchpy_telemetry.backend import breakdowns as B
from branchpy_telemetry.backend.sinks.base import EventFilter, TimeRange
from branchpy_telemetry.backend.sinks.usage_types import UsageFilter
from branchpy_telemetry.client.contracts.schema import SanitizedEvent
from branchpy_telemetry.client.contracts.timewindow import format_ts

from ..backend.conftest import make_package, open_test_sink
from ..service_markers import sink_kind_params
from .conftest import full_size, scaled

pytestmark = pytest.mark.bench

START = datetime(2026, 10, 29, tzinfo=UTC)
SPAN = timedelta(days=30)
NOW = START + SPAN
PACKAGE_EVENTS = 10_000
NAMES = [f"cmd-{i}" for i in range(12)]
WEEK = TimeRange(start=NOW - timedelta(days=7, minutes=17), end=NOW - timedelta(minutes=3))
WEEK_FILTER = UsageFilter(start=WEEK.start, end=WEEK.end)

QUERIES = {
    "stats": lambda s: s.stats(),
    "aggregate category (all)": lambda s: s.aggregate("category", TimeRange()),
    "aggregate source (7d)": lambda s: s.aggregate("source", WEEK),
    "timeline hour (7d)": lambda s: s.timeline("hour", WEEK),
    "timeline day (all)": lambda s: s.timeline("day", TimeRange()),
    "errors/recent (20)": lambda s: s.recent_errors(20),
    "SLO latency p95 (7d)": lambda s: s.latency_summary(WEEK),
    "SLO latency p95 (all)": lambda s: s.latency_summary(TimeRange()),
    "sessions (all, 20)": lambda s: s.sessions(TimeRange(), 20),
    "sessions (7d, 20)": lambda s: s.sessions(WEEK, 20),
    "aggregate/name with previous period (7d)": lambda s: B.name_report(s, WEEK_FILTER, NOW),
    "aggregate/name (all)": lambda s: B.name_report(s, UsageFilter(), NOW),
    "aggregate/version (7d)": lambda s: B.key_usage(s, WEEK_FILTER, "version"),
    "aggregate/platform (7d)": lambda s: B.platform_report(s, WEEK_FILTER),
    "version timeline (30d)": lambda s: B.version_days(s, UsageFilter(start=NOW - SPAN)),
    "stats (7d, command=cmd-3)": lambda s: B.stats_in_range(s, UsageFilter(start=WEEK.start, name="cmd-3")),
    "timeline hour (7d, source=cli)": lambda s: B.filtered_timeline(s, UsageFilter(start=WEEK.start,
                                                                                   source="cli"), 3600),
    "error groups (7d, 20)": lambda s: s.error_groups(WEEK_FILTER, 20),
}
EXTRA = {  # not dashboard aggregates: listed for information, not part of the target
    "events page 1 (no filter)": lambda s: s.list_events(EventFilter(), 1, 50),
    "events page 1 (status=error, 7d)": lambda s: s.list_events(
        EventFilter(status="error", start=WEEK.start, end=WEEK.end), 1, 50),
}


def generate(n: int, seed: int):
    """n events spread evenly over SPAN, in packages of PACKAGE_EVENTS; ~50 events per session."""
    rnd = random.Random(seed)
    step = SPAN / n
    sessions = max(1, n // 50)
    for first in range(0, n, PACKAGE_EVENTS):
        events = []
        for i in range(first, min(n, first + PACKAGE_EVENTS)):
            status = rnd.choices(("ok", "error", "cancelled"), (90, 8, 2))[0]
            err = rnd.randrange(60) if status == "error" else None
            events.append(SanitizedEvent(
                event_id=f"{seed:04x}{i:012x}-bench", ts=format_ts(START + i * step),
                category=rnd.choice(("command", "command", "feature", "performance", "error", "session")),
                source=rnd.choice(("cli", "extension", "daemon")), name=rnd.choice(NAMES),
                duration_ms=round(rnd.lognormvariate(4, 1.3), 3), status=status,
                session_id=f"s{seed}-{(i * sessions) // n}", correlation_id=f"c{i}",
                error_code=f"BP-E{err}" if err is not None else None,
                error_hash=f"sha256:{err:064x}" if err is not None else None,
                attrs={"files": i % 97}))
        yield make_package(events=events, governance_id=f"gov-{rnd.randrange(40)}")


def load(sink, n: int, seed: int) -> tuple[float, int]:
    """(seconds, aggregate rows folded afterwards)."""
    started = time.perf_counter()
    for package in generate(n, seed):
        sink.store_package(package, receipt="sha256:bench", body_bytes=0, received_at=NOW)
    return time.perf_counter() - started, sink.compact(NOW - timedelta(days=1))


def time_query(fn, sink, repeats: int) -> float:
    fn(sink)  # warm caches and statement caches
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(sink)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sink_kind_params(["sqlite", "mysql"]))
def test_bench_dashboard_queries_scale_with_data(kind, tmp_path, report):
    small_n, big_n = scaled(full=10_000, smoke=2_000), scaled(full=1_000_000, smoke=20_000)
    repeats = scaled(full=15, smoke=3)
    with contextlib.ExitStack() as stack:
        small = stack.enter_context(open_test_sink(kind, tmp_path / "small"))
        big = stack.enter_context(open_test_sink(kind, tmp_path / "big"))
        (load_small, folded_small), (load_big, folded_big) = load(small, small_n, 1), load(big, big_n, 2)
        assert big.stats().events == big_n and small.stats().events == small_n
        rows, worst = [], 0.0
        for name, fn in {**QUERIES, **EXTRA}.items():
            ts, tb = time_query(fn, small, repeats), time_query(fn, big, repeats)
            ratio = tb / ts
            if name in QUERIES:
                worst = max(worst, ratio)
            rows.append([name, ts * 1000, tb * 1000, ratio])
    report(f"dashboard queries, {kind}: {small_n:,} vs {big_n:,} events over 30 days "
           f"(median of {repeats}; ratio target <= 3x, goal 1x)",
           ["query", "ms small", "ms big", "big/small"], rows)
    report(f"bulk load, {kind}", ["events", "seconds", "events/s", "aggregate rows folded"],
           [[small_n, load_small, small_n / load_small, folded_small],
            [big_n, load_big, big_n / load_big, folded_big]])
    if full_size():
        print(f"{kind}: worst dashboard ratio {worst:.2f}x")
