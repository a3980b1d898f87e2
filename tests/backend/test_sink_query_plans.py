"""Every statement the SQL sinks run for the events listing uses an index on
events, and no dashboard query reads events at all (they read rollups).
The statements checked are the ones the sink actually ran (`sink.trace()`),
explained by the database itself (SQLite EXPLAIN QUERY PLAN / MySQL EXPLAIN)."""

from __future__ import annotations

import contextlib
import re
from datetime import timedelta

import pytest

from branchpy_telemetry.backend.sinks.base import EventFilter, TimeRange
from branchpy_telemetry.backend.sinks.mysql import MySQLTelemetrySink
from branchpy_telemetry.backend.sinks.sqlite import LocalSQLiteSink
from branchpy_telemetry.backend.sinks.usage_types import UsageFilter

from ..service_markers import sink_kind_params
from .conftest import BASE_TS, fresh_mysql_database, make_package, session_id_for

FILTERS = {
    "category": EventFilter(category="command"),
    "source": EventFilter(source="cli"),
    "name": EventFilter(name="analyze"),
    "status": EventFilter(status="error"),
    "session_id": EventFilter(session_id=session_id_for(0, 1)),
    "error_hash": EventFilter(error_hash="sha256:" + "0" * 63 + "1"),
    "source+status": EventFilter(source="daemon", status="ok"),
    "from": EventFilter(start=BASE_TS + timedelta(hours=3, minutes=40)),  # selective, like a dashboard range
    "from+to": EventFilter(start=BASE_TS, end=BASE_TS + timedelta(minutes=20)),
    "category+name+to": EventFilter(category="feature", name="search", end=BASE_TS + timedelta(hours=3)),
}
RANGE = TimeRange(start=BASE_TS + timedelta(minutes=30), end=BASE_TS + timedelta(days=2, hours=5))


@pytest.fixture(scope="module", params=sink_kind_params(["sqlite", "mysql"]))
def sql_sink(request, tmp_path_factory):
    """10,000 events over ~5 hours: enough rows that the planners choose indexes for real."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            sink = LocalSQLiteSink(tmp_path_factory.mktemp("plans") / "events.db")
        else:
            url, _ = stack.enter_context(fresh_mysql_database())
            sink = MySQLTelemetrySink.from_url(url)
        stack.callback(sink.close)
        for s in range(5):
            package = make_package(2000, seed=s, start=BASE_TS + timedelta(hours=s),
                                   step=timedelta(seconds=2))
            sink.store_package(package, receipt="sha256:x", body_bytes=1, received_at=BASE_TS)
        yield sink


def tables_read(sink, line: str) -> str:
    if sink.kind == "sqlite":
        match = re.match(r"(?:SCAN|SEARCH) (\w+)", line)
        return match.group(1) if match else ""
    return line.split("|")[0]


def full_scans_of_events(sink, statements) -> list[str]:
    """Statements that read all of events. The one exception: a `... ORDER BY ts_us DESC LIMIT n`
    listing may walk ix_events_ts in order, which stops after offset + n matching rows."""
    bad = []
    for sql, args in statements:
        allow_ordered_index_scan = "LIMIT" in sql
        for line in sink.explain(sql, args):
            if sink.kind == "sqlite":
                scan = re.match(r"SCAN events\b(.*)", line)
                if scan and not (allow_ordered_index_scan and "USING INDEX ix_events_ts" in scan.group(1)):
                    bad.append(f"{sql} -> {line}")
            else:
                table, access, key = line.split("|")
                ordered_walk = allow_ordered_index_scan and key == "ix_events_ts"
                full = access == "ALL" or (access == "index" and not ordered_walk)
                if table == "events" and full:
                    bad.append(f"{sql} -> {line}")
    return bad


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filtered_event_listing_and_count_use_an_index(sql_sink, name):
    with sql_sink.trace() as statements:
        page = sql_sink.list_events(FILTERS[name], 2, 20)
    # the page, then the total: one COUNT, or (event_count.py) the earliest event, the two edges, a rollup sum
    assert page.total > 0 and 2 <= len(statements) <= 5
    assert full_scans_of_events(sql_sink, statements) == []


def test_unfiltered_listing_walks_the_ts_index_and_counts_from_totals(sql_sink):
    with sql_sink.trace() as statements:
        sql_sink.list_events(EventFilter(), 3, 50)
    assert full_scans_of_events(sql_sink, statements) == []
    assert "FROM totals" in statements[1][0]


BREAKDOWNS = {
    "usage": lambda s, f: (s.usage(f, ("category", "name")), s.usage(f, ("version",), 86400),
                           s.usage(f, ("source",), 3600), s.usage(f, ())),
    "name_percentiles": lambda s, f: s.name_percentiles(f, (0.5, 0.95)),
    "install_counts": lambda s, f: (s.install_counts(f, "version", True), s.install_counts(f, None, False)),
    "error_groups": lambda s, f: s.error_groups(f, 10),
    "uploads": lambda s, f: s.uploads(f.range),
}
BREAKDOWN_FILTERS = {
    "all": UsageFilter(),
    "range": UsageFilter(start=RANGE.start, end=RANGE.end),
    "range+command": UsageFilter(start=RANGE.start, end=RANGE.end, category="command", name="analyze"),
    "range+source+version": UsageFilter(start=RANGE.start, end=RANGE.end, source="cli", version="1.4.0"),
}


@pytest.mark.parametrize("query", sorted(BREAKDOWNS))
@pytest.mark.parametrize("name", sorted(BREAKDOWN_FILTERS))
def test_breakdowns_read_their_rollup_by_its_primary_key(sql_sink, query, name):
    """A range reads the blocks covering it through the primary key (led by level/start, day/hour):
    never events, never a whole rollup table."""
    flt = BREAKDOWN_FILTERS[name]
    with sql_sink.trace() as statements:
        BREAKDOWNS[query](sql_sink, flt)
    assert statements
    for sql, args in statements:
        assert not re.search(r"\bFROM events\b", sql), sql
        plan = sql_sink.explain(sql, args)
        assert "events" not in {tables_read(sql_sink, line) for line in plan}
        # error_types holds a row per group (3 here): MySQL rightly scans so small a table
        if flt.start is not None and "FROM error_types" not in sql:
            assert full_scans(sql_sink, plan) == [], (sql, plan)


def full_scans(sink, plan: list[str]) -> list[str]:
    if sink.kind == "sqlite":
        return [line for line in plan if re.match(r"SCAN \w+$|SCAN \w+ USING (?!.*INDEX)", line)]
    return [line for line in plan if line.split("|")[1] in ("ALL", "index")]


def test_the_full_scan_check_flags_a_scan_of_a_rollup(sql_sink):
    """Guard: dur_max is in no key."""
    plan = sql_sink.explain("SELECT SUM(events) FROM usage_rollup WHERE dur_max > ?", (1.0,))
    assert full_scans(sql_sink, plan) != []


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
    assert full_scans_of_events(sql_sink, statements) != []
