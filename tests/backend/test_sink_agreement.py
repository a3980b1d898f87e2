"""Every sink answers every query identically: the same packages go into
memory, SQLite, MySQL and the composite, and each query's answer is compared
across them: results must agree between sinks."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from .conftest import BASE_TS, SINK_KINDS, governance_id_for, make_event, make_package
from .sink_answers import RANGES, answers, listing_totals

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def packages():
    """Six packages over three days, overlapping events, a repeated package, two installs."""
    out = [make_package(400, seed=s, start=BASE_TS + timedelta(hours=11 * s), step=timedelta(seconds=97),
                        sessions=6, governance_id=governance_id_for(s % 2)) for s in range(5)]
    out.append(make_package(500, seed=2, start=BASE_TS + timedelta(hours=22), step=timedelta(seconds=97),
                            sessions=6))  # 400 known events + 100 new
    out.append(out[0])  # duplicate package
    out.append(make_package(events=[make_event(9, seed=77, status=None, duration_ms=None),
                                    make_event(10, seed=77, session_id=None,
                                               error_hash="sha256:" + "9" * 64)]))
    return out


def test_every_sink_gives_the_same_answer_to_every_query(
        memory_sink, sqlite_sink, mysql_sink, composite_sink):
    sinks = dict(zip(SINK_KINDS, (memory_sink, sqlite_sink, mysql_sink, composite_sink), strict=True))
    results = {}
    stream = packages()
    for kind, sink in sinks.items():
        for i, package in enumerate(stream):
            sink.store_package(package, receipt=f"sha256:{i}", body_bytes=100, received_at=NOW + timedelta(i))
        results[kind] = answers(sink)
    reference = results["memory"]
    assert reference["stats"]["events"] == 5 * 400 + 100 + 2
    for kind in SINK_KINDS[1:]:
        mismatched = [key for key in reference if results[kind][key] != reference[key]]
        assert mismatched == [], f"{kind} disagrees with memory on {mismatched[:5]}"


def test_listing_totals_agree_with_the_rows_after_retention_cut_through_an_hour(
        memory_sink, sqlite_sink, mysql_sink, composite_sink):
    sinks = dict(zip(SINK_KINDS, (memory_sink, sqlite_sink, mysql_sink, composite_sink), strict=True))
    cutoff = BASE_TS + timedelta(hours=13, minutes=21, seconds=5)  # mid-hour: its rollup row stays
    results = {}
    for kind, sink in sinks.items():
        for i, package in enumerate(packages()):
            sink.store_package(package, receipt=f"sha256:{i}", body_bytes=100, received_at=NOW + timedelta(i))
        assert sink.purge_older_than(cutoff, batch_size=333) > 0
        results[kind] = listing_totals(sink)
    reference = results["memory"]  # the memory sink counts the rows it holds
    assert reference["total-{}-all"] == sinks["memory"].stats().events
    for kind in SINK_KINDS[1:]:
        mismatched = [key for key in reference if results[kind][key] != reference[key]]
        assert mismatched == [], f"{kind} disagrees with memory on {mismatched[:5]}"


@pytest.mark.parametrize("name", ["partial-days", "whole-days", "open-end"])
def test_p95_over_ranges_spanning_days_is_within_3_percent(sqlite_sink, name):
    stream = packages()[:5]
    for package in stream:
        sqlite_sink.store_package(package, receipt="r", body_bytes=1, received_at=NOW)
    rng = RANGES[name]
    lo = rng.start.replace(minute=0, second=0, microsecond=0) if rng.start else None
    hi = rng.end if rng.end is None or rng.end.minute == 0 else (
        rng.end.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
    durations = sorted(ev.duration_ms for p in stream for ev in p.summary.events
                       if ev.duration_ms is not None
                       and (lo is None or datetime.fromisoformat(ev.ts) >= lo)
                       and (hi is None or datetime.fromisoformat(ev.ts) < hi))
    exact = durations[math.ceil(0.95 * len(durations)) - 1]
    assert sqlite_sink.latency_summary(rng).p95_ms == pytest.approx(exact, rel=0.03)
