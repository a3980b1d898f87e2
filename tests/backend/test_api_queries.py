"""Read endpoints over HTTP (real `serve`, SQLite) against a known data set.

The same packages are stored in a MemorySink in this process: every answer
must equal what that reference sink gives (results agree between sinks),
and the filters are also checked against a plain Python count.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta

import msgspec
import pytest
import requests

from branchpy_telemetry.backend.breakdowns import (
    filtered_timeline,
    key_usage,
    name_report,
    platform_report,
    stats_in_range,
    version_days,
)
from branchpy_telemetry.backend.sinks.base import EventFilter, TimeRange
from branchpy_telemetry.backend.sinks.memory import MemorySink
from branchpy_telemetry.backend.sinks.usage_types import UsageFilter
from branchpy_telemetry.backend.slo import compute_slo
from branchpy_telemetry.client.contracts.schema import package_json_schema
from branchpy_telemetry.client.contracts.timewindow import format_ts, parse_time, utcnow

from .conftest import BASE_TS, make_package, session_id_for
from .live_backend import start_sqlite_backend

PACKAGES = [
    make_package(300, seed=201, step=timedelta(minutes=5)),
    make_package(120, seed=202, start=BASE_TS + timedelta(days=2), step=timedelta(minutes=7), sessions=6),
]
EVENTS = [ev for p in PACKAGES for ev in p.summary.events]
T0 = format_ts(BASE_TS + timedelta(hours=3))
T1 = format_ts(BASE_TS + timedelta(days=2, hours=4))
RANGE = TimeRange(start=BASE_TS + timedelta(hours=3), end=BASE_TS + timedelta(days=2, hours=4))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    backend = start_sqlite_backend(tmp_path_factory.mktemp("queries"), slo_success_target="0.95",
                                   slo_p95_target_ms="250", slo_p95_targets="analyze=5000,lint=40")
    for package in PACKAGES:
        response = requests.post(backend.api + "/upload", data=msgspec.json.encode(package), timeout=30,
                                 headers={**backend.headers("ingest"), "Content-Type": "application/json"})
        assert response.status_code == 201, response.text
    yield backend
    backend.stop()


@pytest.fixture(scope="module")
def reference():
    sink = MemorySink()
    for package in PACKAGES:
        sink.store_package(package, receipt="sha256:x", body_bytes=1, received_at=utcnow())
    return sink


def get(server, path: str, **params) -> requests.Response:
    return requests.get(server.api + path, params=params, headers=server.headers("read"), timeout=10)


def ok(server, path: str, **params):
    response = get(server, path, **params)
    assert response.status_code == 200, response.text
    return response.json()


def builtins(value) -> object:
    return msgspec.to_builtins(value)


def test_stats_count_what_was_stored(server, reference):
    stats = ok(server, "/stats")
    expected = builtins(reference.stats())
    assert stats["events"] == len(EVENTS) == expected["events"]
    assert stats["packages"] == 2
    assert stats["sessions"] == len({ev.session_id for ev in EVENTS})
    assert stats["errors"] == expected["errors"]
    assert stats["installs"] == expected["installs"]
    assert stats["last_upload"]


@pytest.mark.parametrize("params, keep", [
    ({"category": "command"}, lambda ev: ev.category == "command"),
    ({"source": "cli"}, lambda ev: ev.source == "cli"),
    ({"name": "lint"}, lambda ev: ev.name == "lint"),
    ({"status": "error"}, lambda ev: ev.status == "error"),
    ({"session_id": session_id_for(201, 1)}, lambda ev: ev.session_id == session_id_for(201, 1)),
    ({"source": "daemon", "status": "ok"}, lambda ev: ev.source == "daemon" and ev.status == "ok"),
    ({"from": T0, "to": T1}, lambda ev: T0 <= ev.ts < T1),
    ({"category": "feature", "name": "graph", "to": T1}, lambda ev: ev.category == "feature"
     and ev.name == "graph" and ev.ts < T1),
])
def test_events_filters_select_exactly_the_matching_events(server, params, keep):
    page = ok(server, "/events", per_page=500, **params)
    expected = sorted((ev.ts, ev.event_id) for ev in EVENTS if keep(ev))
    assert page["total"] == len(expected)
    assert [(it["ts"], it["event_id"]) for it in page["items"]] == expected[::-1][:500]


def test_events_pages_cover_everything_once_newest_first(server):
    seen = []
    page_no = 1
    while True:
        page = ok(server, "/events", per_page=37, page=page_no)
        assert page["per_page"] == 37 and page["page"] == page_no and page["total"] == len(EVENTS)
        if not page["items"]:
            break
        seen += [(it["ts"], it["event_id"]) for it in page["items"]]
        page_no += 1
    assert seen == sorted(((ev.ts, ev.event_id) for ev in EVENTS), reverse=True)
    assert ok(server, "/events")["per_page"] == 50


@pytest.mark.parametrize("params, name", [
    ({"per_page": "0"}, "per_page"), ({"per_page": "501"}, "per_page"), ({"per_page": "ten"}, "per_page"),
    ({"page": "0"}, "page"), ({"page": "-1"}, "page"), ({"page": "1.5"}, "page"),
    ({"category": "commands"}, "category"), ({"source": "browser"}, "source"),
    ({"from": "yesterday"}, "from"), ({"to": "2026-13-45T99:00:00Z"}, "to"), ({"from": "5 parsecs"}, "from"),
    ({"from": T1, "to": T0}, "from"), ({"name": "x" * 201}, "name"), ({"session_id": "a\x00b"}, "session_id"),
])
def test_invalid_parameters_are_400_naming_the_parameter(server, params, name):
    response = get(server, "/events", **params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "bad_parameter" and error["details"] == {"parameter": name}
    assert name in error["message"]


INJECTIONS = ["x' OR '1'='1", "'; DROP TABLE events; --", '" OR 1=1 --',
              "lint') UNION SELECT * FROM api_keys --", "%' OR name LIKE '%",
              "\\'; DELETE FROM packages; #", "1; UPDATE events SET name='pwned'"]


@pytest.mark.parametrize("param", ["name", "status", "session_id"])
def test_sql_injection_in_text_filters_matches_nothing_and_changes_nothing(server, param):
    before = ok(server, "/stats")
    for value in INJECTIONS:
        page = ok(server, "/events", **{param: value})
        assert page["total"] == 0 and page["items"] == []
    assert ok(server, "/stats") == before


@pytest.mark.parametrize("param", ["category", "source", "from", "to", "page", "per_page"])
def test_sql_injection_in_typed_filters_is_a_400(server, param):
    for value in INJECTIONS:
        response = get(server, "/events", **{param: value})
        assert response.status_code == 400, (param, value, response.text)
        assert response.json()["error"]["details"] == {"parameter": param}


@pytest.mark.parametrize("path", ["/aggregate/category", "/aggregate/source", "/aggregate/timeline",
                                  "/errors/slo", "/sessions"])
def test_sql_injection_in_range_and_limit_parameters_is_a_400(server, path):
    for value in INJECTIONS:
        assert get(server, path, **{"from": value}).status_code == 400
    assert get(server, "/errors/recent", limit=INJECTIONS[0]).status_code == 400


@pytest.mark.parametrize("dimension", ["category", "source"])
def test_aggregates_agree_with_the_reference_sink(server, reference, dimension):
    assert ok(server, f"/aggregate/{dimension}") == builtins(reference.aggregate(dimension, TimeRange()))
    ranged = ok(server, f"/aggregate/{dimension}", **{"from": T0, "to": T1})
    assert ranged == builtins(reference.aggregate(dimension, RANGE))
    assert sum(row["count"] for row in ranged) == sum(1 for ev in EVENTS if T0 <= ev.ts < T1)


@pytest.mark.parametrize("bucket", ["hour", "day"])
def test_timeline_agrees_with_the_reference_sink(server, reference, bucket):
    rows = ok(server, "/aggregate/timeline", bucket=bucket)
    assert rows == builtins(reference.timeline(bucket, TimeRange()))
    assert sum(r["count"] for r in rows) == len(EVENTS)
    assert ok(server, "/aggregate/timeline", bucket=bucket, **{"from": T0, "to": T1}) == \
        builtins(reference.timeline(bucket, RANGE))


def test_timeline_bucket_must_be_hour_or_day(server):
    error = get(server, "/aggregate/timeline", bucket="week").json()["error"]
    assert error["details"] == {"parameter": "bucket"}


def test_recent_errors_agree_with_the_reference_sink(server, reference):
    assert ok(server, "/errors/recent", limit=2) == builtins(reference.recent_errors(2))
    assert ok(server, "/errors/recent") == builtins(reference.recent_errors(20))
    assert get(server, "/errors/recent", limit=0).status_code == 400


def test_slo_uses_the_configured_targets_and_the_sinks_latency_summary(server, reference):
    slo = ok(server, "/errors/slo", **{"from": T0, "to": T1})
    summary = reference.latency_summary(RANGE)
    expected = compute_slo(summary, RANGE, utcnow(), 0.95, 250.0)
    assert slo["success_target"] == 0.95 and slo["p95_target_ms"] == 250.0
    assert (slo["total"], slo["errors"]) == (summary.total, summary.errors) and summary.errors > 0
    assert slo["burn_rate"] == pytest.approx((summary.errors / summary.total) / 0.05, abs=1e-5)
    assert slo["error_budget_remaining"] == pytest.approx(1 - slo["burn_rate"], abs=1e-5)
    assert slo["p95_ms"] == pytest.approx(summary.p95_ms)
    assert slo["success_met"] == expected.success_met and slo["latency_met"] == expected.latency_met
    assert slo["window_from"] == T0


def test_slo_default_window_is_the_configured_one(tmp_path):
    """Without from/to the SLO covers the configured window back from now: a package
    from yesterday counts, one from nine days ago does not. The data is placed
    relative to the current time, so the test holds on any date."""
    now = utcnow()
    recent = make_package(40, seed=211, start=now - timedelta(days=1), step=timedelta(minutes=3))
    old = make_package(25, seed=212, start=now - timedelta(days=9), step=timedelta(minutes=3))
    backend = start_sqlite_backend(tmp_path, slo_window="7d")
    try:
        headers = {**backend.headers("ingest"), "Content-Type": "application/json"}
        for package in (recent, old):
            headers = {**backend.headers("ingest"), "Content-Type": "application/json"}
            response = requests.post(backend.api + "/upload", data=msgspec.json.encode(package), timeout=30,
                                     headers=headers)
            assert response.status_code == 201, response.text
        slo = ok(backend, "/errors/slo")
    finally:
        backend.stop()
    start, end = parse_time(slo["window_from"]), parse_time(slo["window_to"])
    assert abs((end - start) - timedelta(days=7)) < timedelta(seconds=1)
    statuses = [ev.status for ev in recent.summary.events]
    assert (slo["total"], slo["errors"]) == (len(statuses), statuses.count("error"))


def test_sessions_agree_with_the_reference_sink(server, reference):
    assert ok(server, "/sessions") == builtins(reference.sessions(TimeRange(), 50))
    assert ok(server, "/sessions", limit=3, **{"from": T0}) == \
        builtins(reference.sessions(TimeRange(start=RANGE.start), 3))


def test_schema_is_the_published_package_schema(server):
    assert ok(server, "/schema") == package_json_schema()


def test_listing_matches_the_reference_sink_item_for_item(server, reference):
    flt = EventFilter(category="command", start=RANGE.start, end=RANGE.end)
    assert ok(server, "/events", category="command", per_page=20, page=2, **{"from": T0, "to": T1}) == \
        builtins(reference.list_events(flt, 2, 20))


# ---- the dashboard's breakdowns ---------------------------------------------------

FILTERS = [{}, {"category": "command"}, {"name": "analyze"}, {"source": "cli", "version": "1.4.0"},
           {"os": "linux", "python": "3.11.2"}, {"version": "0.0.1"}]


def usage_filter(params: dict) -> UsageFilter:
    return UsageFilter(start=RANGE.start, end=RANGE.end, **params)


def in_whole_hours(ev) -> bool:
    """Rollup precision: T0 and T1 fall on whole hours."""
    return T0 <= ev.ts < T1


@pytest.mark.parametrize("params", FILTERS)
def test_aggregate_name_agrees_with_the_reference_and_the_events(server, reference, params):
    report = ok(server, "/aggregate/name", **{"from": T0, "to": T1}, **params)
    flt = usage_filter(params)
    assert report == builtins(name_report(reference, flt, utcnow()))
    assert (report["window_from"], report["window_to"]) == (T0, T1)
    length = RANGE.end - RANGE.start
    assert report["previous_from"] == format_ts(RANGE.start - length) and report["previous_to"] == T0
    keep = [ev for ev in EVENTS if in_whole_hours(ev)
            and all(getattr(ev, k, "1.4.0" if k == "version" else None) == v
                    for k, v in params.items() if k in ("category", "name", "source", "version"))]
    if params.get("version") == "0.0.1":
        keep = []
    assert {row["name"]: row["count"] for row in report["items"]} == dict(Counter(ev.name for ev in keep))
    for row in report["items"]:
        mine = [ev for ev in keep if ev.name == row["name"]]
        assert row["errors"] == sum(ev.status == "error" for ev in mine)
        durations = sorted(ev.duration_ms for ev in mine if ev.duration_ms is not None)
        assert row["max_ms"] == (max(durations) if durations else None)
        if len(durations) >= 20 and not params.get("source"):  # percentiles: every source of the command
            exact = durations[math.ceil(0.95 * len(durations)) - 1]
            assert row["p95_ms"] == pytest.approx(exact, rel=0.03)


def test_aggregate_name_without_a_range_has_no_previous_period(server, reference):
    report = ok(server, "/aggregate/name")
    assert report["previous_from"] is None and all(row["previous"] is None for row in report["items"])
    assert sum(row["count"] for row in report["items"]) == len(EVENTS)


@pytest.mark.parametrize("params", FILTERS)
def test_version_platform_and_stats_agree_with_the_reference(server, reference, params):
    flt = usage_filter(params)
    window = {"from": T0, "to": T1, **params}
    assert ok(server, "/aggregate/version", **window) == builtins(key_usage(reference, flt, "version"))
    assert ok(server, "/aggregate/version/timeline", **window) == builtins(version_days(reference, flt))
    assert ok(server, "/aggregate/platform", **window) == builtins(platform_report(reference, flt))
    assert ok(server, "/stats", **window) == {**builtins(stats_in_range(reference, flt)), "packages": 0,
                                                "last_upload": None}  # both received today, not in RANGE
    assert ok(server, "/errors/recent", limit=5, **window) == builtins(reference.error_groups(flt, 5))
    for dimension in ("category", "source"):
        rows = ok(server, f"/aggregate/{dimension}", **window)
        expected = sorted(reference.usage(flt, (dimension,)), key=lambda g: (-g.events, g.key))
        assert rows == [{"key": g.key[0], "count": g.events} for g in expected]
    for bucket, size in (("hour", 3600), ("day", 86400)):
        expected = (filtered_timeline(reference, flt, size) if flt.has_fields
                    else reference.timeline(bucket, RANGE))
        assert ok(server, "/aggregate/timeline", bucket=bucket, **window) == builtins(expected)


def test_version_and_platform_count_events_and_installs(server):
    assert ok(server, "/aggregate/version") == [{"key": "1.4.0", "events": len(EVENTS), "installs": 1}]
    platform = ok(server, "/aggregate/platform")
    assert platform == {"os": [{"key": "linux", "events": len(EVENTS), "installs": 1}],
                        "python": [{"key": "3.11.2", "events": len(EVENTS), "installs": 1}]}
    stats = ok(server, "/stats", **{"from": format_ts(BASE_TS - timedelta(days=1))})  # before every event
    assert (stats["events"], stats["packages"], stats["installs"]) == (len(EVENTS), 2, 1)


def test_error_groups_over_a_range_name_every_command_and_their_first_and_last_sighting(server):
    groups = ok(server, "/errors/recent", **{"from": T0, "to": T1})
    errors = [ev for ev in EVENTS if in_whole_hours(ev) and ev.error_hash]
    assert {g["error_hash"] for g in groups} == {ev.error_hash for ev in errors}
    for g in groups:
        mine = [ev for ev in errors if ev.error_hash == g["error_hash"]]
        assert g["count"] == len(mine)
        assert (g["first_seen"], g["last_seen"]) == (min(ev.ts for ev in mine), max(ev.ts for ev in mine))
        assert g["commands"] == sorted({ev.name for ev in mine})
    assert [g["last_seen"] for g in groups] == sorted((g["last_seen"] for g in groups), reverse=True)
    events = ok(server, "/events", error_hash=groups[0]["error_hash"], per_page=500)
    assert events["total"] == sum(ev.error_hash == groups[0]["error_hash"] for ev in EVENTS)


def test_slo_per_command_uses_each_commands_own_p95_target(server, reference):
    slo = ok(server, "/errors/slo", **{"from": T0, "to": T1})
    by_name = {c["name"]: c for c in slo["commands"]}
    assert {c["category"] for c in slo["commands"]} == {"command"}
    assert by_name["analyze"]["p95_target_ms"] == 5000 and by_name["lint"]["p95_target_ms"] == 40
    assert by_name["graph"]["p95_target_ms"] == 250
    for c in slo["commands"]:
        mine = [ev for ev in EVENTS if in_whole_hours(ev) and ev.name == c["name"] and ev.status]
        assert (c["total"], c["errors"]) == (len(mine), sum(ev.status == "error" for ev in mine))
        assert c["burn_rate"] == pytest.approx((c["errors"] / c["total"]) / 0.05, abs=1e-5)
        assert c["latency_met"] == (c["p95_ms"] <= c["p95_target_ms"])
    features = ok(server, "/errors/slo", category="feature", **{"from": T0, "to": T1})["commands"]
    assert {c["category"] for c in features} == {"feature"}


@pytest.mark.parametrize("path", ["/aggregate/name", "/aggregate/version", "/aggregate/version/timeline",
                                  "/aggregate/platform", "/stats", "/errors/recent"])
@pytest.mark.parametrize(("params", "name"), [({"category": "commands"}, "category"),
                                              ({"source": "browser"}, "source"), ({"from": "soon"}, "from"),
                                              ({"version": "v" * 201}, "version"), ({"os": "a\x00b"}, "os")])
def test_bad_filters_are_a_400_naming_the_parameter(server, path, params, name):
    response = get(server, path, **params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["details"] == {"parameter": name}
