"""The storage contract (`sinks/base.py`), run once per sink: memory, sqlite, mysql,
composite (SQLite primary + MySQL secondary). Expected answers are computed
here by brute force over the events, independently of the sinks' rollups."""

from __future__ import annotations

import math
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from branchpy_telemetry.backend.sinks.base import (
    ApiKeyRecord,
    EventFilter,
    InvalidPackageError,
    SinkError,
    TimeRange,
)
from branchpy_telemetry.client.contracts.timewindow import format_ts

from ..service_markers import sink_kind_params
from .conftest import BASE_TS, SINK_KINDS, governance_id_for, make_event, make_package, open_test_sink

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def store(sink, package, received_at=NOW):
    return sink.store_package(package, receipt="sha256:" + "0" * 64, body_bytes=1234, received_at=received_at)


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


def hour_floor(dt: datetime) -> datetime:
    return dt.replace(minute=0, second=0, microsecond=0)


def in_hours(ev, rng: TimeRange) -> bool:
    """Rollup precision: every hour overlapping [start, end) counts whole."""
    ts = parse(ev.ts)
    lo = hour_floor(rng.start) if rng.start else None
    hi = None
    if rng.end:
        hi = hour_floor(rng.end) + (timedelta(hours=1) if rng.end != hour_floor(rng.end) else timedelta(0))
    return (lo is None or ts >= lo) and (hi is None or ts < hi)


def load(sink):
    """Three packages (300 events over ~5 hours, two installs)."""
    packages = [make_package(100, seed=s, start=BASE_TS + timedelta(minutes=97 * s),
                             step=timedelta(seconds=61), governance_id=governance_id_for(s % 2))
                for s in range(3)]
    for i, p in enumerate(packages):
        store(sink, p, received_at=NOW + timedelta(minutes=i))
    return sink, [ev for p in packages for ev in p.summary.events]


@pytest.fixture(scope="module", params=sink_kind_params(SINK_KINDS))
def loaded(request, tmp_path_factory):
    """A loaded sink shared by the read-only tests of this module (one per kind)."""
    with open_test_sink(request.param, tmp_path_factory.mktemp(request.param)) as sink:
        yield load(sink)


@pytest.fixture
def loaded_private(any_sink):
    """A loaded sink for a test that changes it."""
    return load(any_sink)


# ---- writes -------------------------------------------------------------------

def test_store_package_accepts_every_event(any_sink):
    result = store(any_sink, make_package(25))
    assert (result.accepted_events, result.duplicate_events, result.duplicate) == (25, 0, False)
    assert any_sink.stats().events == 25


def test_same_package_again_is_duplicate_and_writes_nothing(any_sink):
    package = make_package(10)
    store(any_sink, package)
    again = store(any_sink, package)
    assert again.duplicate is True and again.accepted_events == 0
    stats = any_sink.stats()
    assert (stats.events, stats.packages) == (10, 1)


def test_known_event_ids_in_a_new_package_are_skipped_and_counted(any_sink):
    store(any_sink, make_package(10, seed=1))
    overlap = make_package(15, seed=1)  # same 10 first events + 5 new ones, new package_id
    result = store(any_sink, overlap)
    assert (result.accepted_events, result.duplicate_events, result.duplicate) == (5, 10, False)
    assert any_sink.stats().events == 15
    assert sum(k.count for k in any_sink.aggregate("category", TimeRange())) == 15


def test_event_id_repeated_inside_one_package_is_stored_once(any_sink):
    ev = make_event(0)
    result = store(any_sink, make_package(events=[ev, ev, make_event(1)]))
    assert (result.accepted_events, result.duplicate_events) == (2, 1)
    assert any_sink.list_events(EventFilter(), 1, 10).total == 2


def test_invalid_event_ts_is_rejected_before_anything_is_written(any_sink):
    bad = make_package(events=[make_event(0), make_event(1, ts="yesterday")])
    with pytest.raises(InvalidPackageError) as info:
        store(any_sink, bad)
    assert info.value.pointer == "/summary/events/1/ts"
    stats = any_sink.stats()
    assert (stats.events, stats.packages) == (0, 0)


def test_concurrent_stores_from_threads_lose_and_double_nothing(any_sink):
    packages = [make_package(20, seed=s, sessions=2) for s in range(8)]
    packages += [make_package(20, seed=s, sessions=2) for s in range(4)]  # same events, new package ids
    errors: list[BaseException] = []

    def worker(chunk):
        try:
            for p in chunk:
                store(any_sink, p)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(packages[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    stats = any_sink.stats()
    assert (stats.events, stats.packages) == (160, 12)
    assert any_sink.sessions(TimeRange(), 100).count == 16


def test_racing_uploads_of_the_same_new_events_store_each_event_once(any_sink):
    """Two packages carrying the same new events, released together, again and again."""
    results: list = []
    errors: list[BaseException] = []
    for round_ in range(6):
        twins = [make_package(40, seed=100 + round_, sessions=3) for _ in range(2)]
        barrier = threading.Barrier(2)

        def upload(package, barrier=barrier):
            try:
                barrier.wait(10)
                results.append(store(any_sink, package))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=upload, args=(p,)) for p in twins]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors
    assert sum(r.accepted_events for r in results) == 6 * 40
    assert sum(r.duplicate_events for r in results) == 6 * 40
    stats = any_sink.stats()
    assert (stats.events, stats.packages, stats.sessions) == (240, 12, 18)
    assert sum(b.count for b in any_sink.timeline("hour", TimeRange())) == 240
    assert any_sink.sessions(TimeRange(), 100).avg_events == pytest.approx(240 / 18, abs=0.001)


# ---- reads --------------------------------------------------------------------

def test_stats_report_every_dashboard_total(loaded):
    sink, events = loaded
    stats = sink.stats()
    assert stats.events == len(events) == 300
    assert stats.packages == 3
    assert stats.sessions == len({ev.session_id for ev in events})
    assert stats.errors == sum(ev.status == "error" for ev in events)
    assert stats.installs == 2
    assert stats.last_upload == format_ts(NOW + timedelta(minutes=2))


def test_list_events_is_newest_first_and_paginated(loaded):
    sink, events = loaded
    expected = [ev.event_id for ev in sorted(events, key=lambda e: (parse(e.ts), e.event_id), reverse=True)]
    seen = []
    for page in range(1, 8):
        result = sink.list_events(EventFilter(), page, 50)
        assert (result.total, result.page, result.per_page) == (300, page, 50)
        seen += [item.event_id for item in result.items]
    assert seen == expected


@pytest.mark.parametrize("field", ["category", "source", "name", "status", "session_id"])
def test_list_events_filters_on_each_field(loaded, field):
    sink, events = loaded
    value = getattr(events[7], field)
    expected = [ev for ev in events if getattr(ev, field) == value]
    result = sink.list_events(EventFilter(**{field: value}), 1, 500)
    assert result.total == len(expected) > 0
    assert {item.event_id for item in result.items} == {ev.event_id for ev in expected}


@pytest.mark.parametrize(("page", "per_page"), [(0, 10), (1, 0), (-1, 5)])
def test_list_events_rejects_pages_below_one(loaded, page, per_page):
    sink, _ = loaded
    with pytest.raises(ValueError, match="must be >= 1"):
        sink.list_events(EventFilter(), page, per_page)


def test_a_page_past_the_end_is_empty_with_the_total(loaded):
    sink, events = loaded
    result = sink.list_events(EventFilter(), 99, 50)
    assert (result.items, result.total) == ([], len(events))


def test_list_events_time_range_includes_start_and_excludes_end(loaded):
    sink, events = loaded
    start, end = parse(events[10].ts), parse(events[40].ts)
    result = sink.list_events(EventFilter(start=start, end=end), 1, 500)
    assert {i.event_id for i in result.items} == {ev.event_id for ev in events if start <= parse(ev.ts) < end}
    assert result.total == 30


def test_list_events_round_trips_every_field_including_unicode(any_sink):
    ev = make_event(0, name="analyse-ü-日本-🚀", status="error", error_code="BP-E1",
                    error_hash="sha256:" + "a" * 64,
                    attrs={"flag": True, "n": 3, "ratio": 0.5, "label": "naïve ✓", "none": None})
    store(any_sink, make_package(events=[ev], governance_id="gov-ü"))
    (item,) = any_sink.list_events(EventFilter(name="analyse-ü-日本-🚀"), 1, 10).items
    for field in ("event_id", "ts", "category", "source", "name", "duration_ms", "status", "session_id",
                  "correlation_id", "error_code", "error_hash", "attrs"):
        assert getattr(item, field) == getattr(ev, field), field
    assert item.governance_id == "gov-ü"


def test_text_matching_is_exact_case_and_trailing_spaces_count(any_sink):
    names = ["lint", "Lint", "lint ", "lınt"]
    store(any_sink, make_package(events=[make_event(i, name=n) for i, n in enumerate(names)]))
    for n in names:
        assert [i.name for i in any_sink.list_events(EventFilter(name=n), 1, 10).items] == [n]


@pytest.mark.parametrize("evil", ["x' OR '1'='1", "'; DROP TABLE events; --", "\" OR 1=1 --", "%", "_",
                                  "\\", "a\x00b", "ü' UNION SELECT * FROM api_keys --"])
def test_sql_injection_in_filter_values_is_harmless(loaded, evil):
    sink, events = loaded
    for field in ("category", "source", "name", "status", "session_id"):
        assert sink.list_events(EventFilter(**{field: evil}), 1, 10).total == 0
    assert sink.stats().events == len(events)


def test_aggregate_counts_per_category_and_source_largest_first(loaded):
    sink, events = loaded
    for dim in ("category", "source"):
        expected = Counter(getattr(ev, dim) for ev in events)
        got = sink.aggregate(dim, TimeRange())
        assert {k.key: k.count for k in got} == dict(expected)
        assert [k.count for k in got] == sorted((k.count for k in got), reverse=True)


def test_aggregate_range_counts_whole_overlapping_hours(loaded):
    sink, events = loaded
    rng = TimeRange(start=BASE_TS + timedelta(minutes=90), end=BASE_TS + timedelta(minutes=200))
    expected = Counter(ev.category for ev in events if in_hours(ev, rng))
    assert {k.key: k.count for k in sink.aggregate("category", rng)} == dict(expected)


@pytest.mark.parametrize("bucket", ["hour", "day"])
def test_timeline_buckets_oldest_first_with_errors(loaded, bucket):
    sink, events = loaded
    counts: dict[str, list[int]] = {}
    for ev in events:
        ts = hour_floor(parse(ev.ts))
        if bucket == "day":
            ts = ts.replace(hour=0)
        cell = counts.setdefault(format_ts(ts), [0, 0])
        cell[0] += 1
        cell[1] += ev.status == "error"
    got = sink.timeline(bucket, TimeRange())
    assert [(b.bucket, b.count, b.errors) for b in got] == [(k, *v) for k, v in sorted(counts.items())]


def test_timeline_range_selects_hours(loaded):
    sink, events = loaded
    rng = TimeRange(start=BASE_TS + timedelta(hours=1), end=BASE_TS + timedelta(hours=3))
    got = sink.timeline("hour", rng)
    assert [b.bucket for b in got] == [format_ts(BASE_TS + timedelta(hours=h)) for h in (1, 2)]
    assert sum(b.count for b in got) == sum(in_hours(ev, rng) for ev in events)


def test_recent_errors_group_by_hash_most_recent_first(loaded):
    sink, events = loaded
    groups: dict[str, list] = {}
    for ev in sorted(events, key=lambda e: (parse(e.ts), e.event_id)):
        if ev.error_hash:
            g = groups.setdefault(ev.error_hash, [0, None, None, None])
            g[0] += 1
            g[1:] = [ev.error_code, ev.name, ev.ts]
    got = sink.recent_errors(10)
    assert [(e.error_hash, e.count, e.error_code, e.name) for e in got] == [
        (h, g[0], g[1], g[2]) for h, g in sorted(groups.items(), key=lambda kv: (parse(kv[1][3]), kv[0]),
                                                   reverse=True)]
    assert [parse(e.last_seen) for e in got] == [parse(groups[e.error_hash][3]) for e in got]
    assert len(sink.recent_errors(1)) == 1


def test_latency_summary_counts_statuses_and_p95_within_3_percent(loaded):
    sink, events = loaded
    summary = sink.latency_summary(TimeRange())
    assert summary.total == sum(ev.status is not None for ev in events)
    assert summary.errors == sum(ev.status == "error" for ev in events)
    durations = sorted(ev.duration_ms for ev in events if ev.duration_ms is not None)
    exact = durations[math.ceil(0.95 * len(durations)) - 1]
    assert summary.p95_ms == pytest.approx(exact, rel=0.03)


def test_latency_summary_of_an_empty_range_has_no_p95(loaded):
    sink, _ = loaded
    empty = sink.latency_summary(TimeRange(start=NOW + timedelta(days=10)))
    assert (empty.total, empty.errors, empty.p95_ms) == (0, 0, None)


def test_sessions_summarize_duration_and_events_newest_first(loaded):
    sink, events = loaded
    by_session: dict[str, list[datetime]] = {}
    for ev in events:
        by_session.setdefault(ev.session_id, []).append(parse(ev.ts))
    summary = sink.sessions(TimeRange(), 5)
    assert summary.count == len(by_session)
    durations = {s: (max(t) - min(t)).total_seconds() * 1000 for s, t in by_session.items()}
    assert summary.avg_duration_ms == pytest.approx(sum(durations.values()) / len(durations), abs=0.01)
    assert summary.avg_events == pytest.approx(len(events) / len(by_session), abs=0.01)
    newest = sorted(by_session, key=lambda s: (min(by_session[s]), s), reverse=True)[:5]
    assert [row.session_id for row in summary.items] == newest
    first = summary.items[0]
    assert first.events == len(by_session[first.session_id])
    assert first.duration_ms == pytest.approx(durations[first.session_id])


def test_sessions_range_selects_sessions_by_first_event_hour(loaded):
    sink, events = loaded
    firsts: dict[str, datetime] = {}
    for ev in events:
        firsts[ev.session_id] = min(firsts.get(ev.session_id, parse(ev.ts)), parse(ev.ts))
    rng = TimeRange(start=BASE_TS + timedelta(minutes=100))
    expected = {s for s, t in firsts.items() if t >= hour_floor(rng.start)}
    got = sink.sessions(rng, 100)
    assert got.count == len(expected)
    assert {row.session_id for row in got.items} == expected


def test_purge_deletes_events_older_than_cutoff_in_batches(loaded_private):
    sink, events = loaded_private
    cutoff = BASE_TS + timedelta(hours=2)
    older = sum(parse(ev.ts) < cutoff for ev in events)
    assert sink.purge_older_than(cutoff, batch_size=7) == older
    stats = sink.stats()
    assert stats.events == len(events) - older
    assert stats.errors == sum(ev.status == "error" and parse(ev.ts) >= cutoff for ev in events)
    assert sink.list_events(EventFilter(end=cutoff), 1, 10).total == 0
    assert sum(b.count for b in sink.timeline("hour", TimeRange())) == len(events) - older
    assert sink.purge_older_than(cutoff) == 0


def test_health_is_ok(any_sink):
    health = any_sink.health()
    assert health.ok is True and health.kind == any_sink.kind


def test_migrate_is_idempotent(any_sink):
    assert any_sink.migrate() == any_sink.migrate()


def test_api_keys_are_added_found_listed_and_revoked(any_sink):
    rec = ApiKeyRecord(key_id="bpk_abc", key_hash="f" * 64, scope="ingest", label="laptop ✓",
                       created_at="2026-11-28T00:00:00.000Z")
    any_sink.add_api_key(rec)
    any_sink.add_api_key(ApiKeyRecord(key_id="bpk_def", key_hash="e" * 64, scope="read",
                                      created_at="2026-11-28T00:00:01.000Z"))
    assert any_sink.find_api_key("f" * 64) == rec
    assert any_sink.find_api_key("x' OR '1'='1") is None
    assert [r.key_id for r in any_sink.list_api_keys()] == ["bpk_abc", "bpk_def"]
    assert any_sink.revoke_api_key("bpk_abc", NOW) is True
    assert any_sink.revoke_api_key("bpk_abc", NOW) is False
    assert any_sink.revoke_api_key("nope", NOW) is False
    assert any_sink.find_api_key("f" * 64).revoked_at == format_ts(NOW)


def test_an_api_key_id_or_hash_cannot_be_added_twice(any_sink):
    rec = ApiKeyRecord(key_id="bpk_1", key_hash="a" * 64, scope="admin",
                       created_at="2026-11-28T00:00:00.000Z")
    any_sink.add_api_key(rec)
    replace = msgspec.structs.replace
    for dup in (rec, replace(rec, key_hash="b" * 64), replace(rec, key_id="x")):
        with pytest.raises(SinkError):
            any_sink.add_api_key(dup)
    assert any_sink.list_api_keys() == [rec]
