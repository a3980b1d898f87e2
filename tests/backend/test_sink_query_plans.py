"""Every statement the SQL sinks run for the events listing uses an index on
events, and no dashboard query reads events at all (they read rollups).
The statements checked are the ones the sink actually ran (`sink.trace()`),
explained by the database itself (SQLite EXPLAIN QUERY PLAN / MySQL EXPLAIN)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from branchpy_telemetry.backend.sinks.base import EventFilter, TimeRange

from .conftest import BASE_TS, make_package

FILTERS = {
    "category": EventFilter(category="command"),
    "source": EventFilter(source="cli"),
    "name": EventFilter(name="analyze"),
    "status": EventFilter(status="error"),
    "session_id": EventFilter(session_id="s-0-1"),
    "source+status": EventFilter(source="daemon", status="ok"),
    "from": EventFilter(start=BASE_TS + timedelta(hours=1)),
    "from+to": EventFilter(start=BASE_TS, end=BASE_TS + timedelta(hours=1)),
    "category+name+to": EventFilter(category="feature", name="lint", end=BASE_TS + timedelta(hours=3)),
}
RANGE = TimeRange(start=BASE_TS + timedelta(minutes=30), end=BASE_TS + timedelta(days=2, hours=5))


@pytest.fixture(params=["sqlite", "mysql"])
def sql_sink(request):
    sink = request.getfixturevalue(f"{request.param}_sink")
    for s in range(4):  # enough rows that the planners prefer indexes for real
        package = make_package(500, seed=s, start=BASE_TS + timedelta(hours=s), step=timedelta(seconds=7))
        sink.store_package(package, receipt="sha256:x", body_bytes=1, received_at=BASE_TS)
    return sink


def tables_read(sink, line: str) -> str:
    if sink.kind == "sqlite":
        match = re.match(r"(?:SCAN|SEARCH) (\w+)", line)
        return match.group(1) if match else ""
    return line.split("|")[0]


def full_scans_of_events(sink, statements, *, allow_ordered_index_scan: bool) -> list[str]:
    bad = []
    for sql, args in statements:
        for line in sink.explain(sql, args):
            if sink.kind == "sqlite":
                scan = re.match(r"SCAN events\b(.*)", line)
                if scan and not (allow_ordered_index_scan and "USING INDEX ix_events_ts" in scan.group(1)):
                    bad.append(f"{sql} -> {line}")
            else:
                table, access, key = line.split("|")
                full = access == "ALL" or (access == "index" and not allow_ordered_index_scan)
                if table == "events" and full:
                    bad.append(f"{sql} -> {line}")
    return bad


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filtered_event_listing_and_count_use_an_index(sql_sink, name):
    with sql_sink.trace() as statements:
        page = sql_sink.list_events(FILTERS[name], 2, 20)
    assert page.total >= 0 and len(statements) == 2
    assert full_scans_of_events(sql_sink, statements, allow_ordered_index_scan=False) == []


def test_unfiltered_listing_walks_the_ts_index_and_counts_from_totals(sql_sink):
    with sql_sink.trace() as statements:
        sql_sink.list_events(EventFilter(), 3, 50)
    assert full_scans_of_events(sql_sink, statements, allow_ordered_index_scan=True) == []
    assert "FROM totals" in statements[1][0]


@pytest.mark.parametrize("query", ["stats", "aggregate", "timeline", "recent_errors", "latency", "sessions"])
@pytest.mark.parametrize("rng", [TimeRange(), RANGE], ids=["all", "range"])
def test_dashboard_queries_never_read_events(sql_sink, query, rng):
    calls = {
        "stats": lambda: sql_sink.stats(),
        "aggregate": lambda: (sql_sink.aggregate("category", rng), sql_sink.aggregate("source", rng)),
        "timeline": lambda: (sql_sink.timeline("hour", rng), sql_sink.timeline("day", rng)),
        "recent_errors": lambda: sql_sink.recent_errors(10),
        "latency": lambda: sql_sink.latency_summary(rng),
        "sessions": lambda: sql_sink.sessions(rng, 20),
    }
    with sql_sink.trace() as statements:
        calls[query]()
    assert statements
    for sql, args in statements:
        assert not re.search(r"\bFROM events\b", sql), sql
        assert "events" not in {tables_read(sql_sink, line) for line in sql_sink.explain(sql, args)}


def test_the_plan_check_flags_a_full_scan_of_events(sql_sink):
    """Guard against a check that cannot fail: attrs has no index."""
    statements = [("SELECT event_id FROM events WHERE attrs = ?", ("{}",))]
    assert full_scans_of_events(sql_sink, statements, allow_ordered_index_scan=False) != []
