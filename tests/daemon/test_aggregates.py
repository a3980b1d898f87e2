"""Per-part aggregates: exact values, and a size bound the exporter can trust."""

from __future__ import annotations

import random

import msgspec
import pytest

from branchpy_telemetry.client.contracts.schema import SanitizedEvent
from branchpy_telemetry.daemon.export.aggregates import PartAggregates, nearest_rank
from branchpy_telemetry.daemon.export.package_writer import (
    make_header,
    part_prefix,
    part_suffix,
    skeleton_size,
)


def event(i: int, **over) -> SanitizedEvent:
    fields = dict(event_id=f"e{i}", ts=f"2026-11-28T01:00:{i % 60:02d}.000Z", category="command",
                  source="cli", name="analyze", duration_ms=float(i), status="ok")
    fields.update(over)
    return SanitizedEvent(**fields)


@pytest.mark.parametrize(("values", "p50", "p95"), [
    ([5.0], 5.0, 5.0),
    ([1.0, 2.0], 1.0, 2.0),
    ([float(v) for v in range(1, 101)], 50.0, 95.0),
    ([float(v) for v in range(1, 21)], 10.0, 19.0),
])
def test_percentiles_are_nearest_rank(values, p50, p95):
    assert nearest_rank(values, 50) == p50 and nearest_rank(values, 95) == p95


def test_performance_usage_and_correlation_ids_count_every_event():
    agg = PartAggregates()
    evs = [event(i, name=["a", "b"][i % 2], category=["command", "feature"][i % 2],
                 correlation_id=f"c{i % 3}", status=["ok", "error", None][i % 3]) for i in range(12)]
    evs.append(event(99, name="a", duration_ms=None))
    for e in evs:
        agg.add(e, None, None)
    perf = agg.performance_metrics()
    a = sorted(float(i) for i in range(0, 12, 2))
    assert perf["a"].count == 6 and perf["a"].total_ms == sum(a) and perf["a"].max_ms == 10.0
    assert perf["a"].mean_ms == sum(a) / 6 and perf["a"].p50_ms == a[2] and perf["a"].p95_ms == a[5]
    usage = agg.usage_statistics()
    assert usage.commands == {"a": 7} and usage.features == {"b": 6}
    assert usage.categories == {"command": 7, "feature": 6} and usage.sources == {"cli": 13}
    assert usage.statuses == {"error": 4, "ok": 5}
    assert agg.sorted_correlation_ids() == ["c0", "c1", "c2"]
    assert (agg.first_ts, agg.last_ts) == ("2026-11-28T01:00:00.000Z", "2026-11-28T01:00:39.000Z")


def test_errors_group_by_hash_code_and_name_with_first_and_last_seen():
    agg = PartAggregates()
    h1, h2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    agg.add(event(5, error_hash=h1, error_code="E1"), "ValueError", None)
    agg.add(event(2, error_hash=h1, error_code="E1"), "ValueError", None)
    agg.add(event(9, error_hash=h1, error_code="E1"), None, None)
    agg.add(event(7, error_hash=h1, error_code="E1", name="other"), None, None)
    agg.add(event(3, error_hash=h2), None, None)
    samples = {(s.error_hash, s.name): s for s in agg.error_samples()}
    s = samples[(h1, "analyze")]
    assert (s.count, s.error_code, s.error_type) == (3, "E1", "ValueError")
    assert (s.first_seen, s.last_seen) == ("2026-11-28T01:00:02.000Z", "2026-11-28T01:00:09.000Z")
    assert samples[(h1, "other")].count == 1 and samples[(h2, "analyze")].error_code is None
    assert agg.error_samples()[0].count == 3  # most frequent first


def _random_event(r: random.Random, i: int) -> tuple[SanitizedEvent, str | None, dict | None]:
    name = r.choice(["analyze", "lint", "é-ü", 'quo"te', "x" * r.randint(1, 80)])
    err = r.random() < 0.3
    ev = SanitizedEvent(
        event_id=f"id{i}", ts=r.choice(["2026-11-28T01:00:00.000Z", "2026-11-28T01:00:00Z", "t" * 30,
                                          'q"uote', "é" * 8, "tab\there"]),
        category=r.choice(["command", "feature", "error"]), source=r.choice(["cli", "extension"]),
        name=name, duration_ms=r.choice([None, r.uniform(0, 1e6), 1e-300, -2.2250738585072014e-308]),
        status=r.choice([None, "ok", "error", "weird\u00e9"]),
        correlation_id=r.choice([None, f"corr{r.randint(0, 30)}"]),
        error_hash=f"sha256:{r.randint(0, 5):064x}" if err else None,
        error_code=r.choice([None, "BP-E1", "BP-E22"]) if err else None)
    etype = r.choice([None, "ValueError", "ÄrgerError"]) if err else None
    rules = r.choice([None, {"raw_path": 1}, {"multiline": 2, "too_long": 1}])
    return ev, etype, rules


def test_cost_predicts_the_bound_exactly_and_the_bound_covers_the_encoded_package():
    r = random.Random(7)
    header = make_header("00000000-0000-4000-8000-000000000000", "2026-11-28T00:00:00.000Z", None)
    skeleton = skeleton_size(header)
    enc = msgspec.json.Encoder()
    for trial in range(30):
        agg = PartAggregates()
        events = []
        for i in range(r.randint(0, 60)):
            ev, etype, rules = _random_event(r, i)
            before = agg.bound
            predicted = agg.cost(ev, etype, rules)
            agg.add(ev, etype, rules)
            assert agg.bound - before == predicted
            events.append(enc.encode(ev))
        pid = "00000000-0000-4000-8000-000000000001"
        prefix = part_prefix(header, pid)  # a part as the exporter streams it: prefix, events, suffix
        data = prefix + b",".join(events) + part_suffix(header, package_id=pid, prefix=prefix,
                                                        count=len(events), part=trial + 1,
                                                        last_part=bool(trial % 2), skipped=trial * 1000,
                                                        agg=agg)
        assert msgspec.json.decode(data)["summary"]["event_count"] == len(events)
        assert len(data) <= skeleton + sum(len(e) + 1 for e in events) + agg.bound


def _state(agg: PartAggregates) -> tuple:
    return (agg.performance_metrics(), agg.usage_statistics(), agg.error_samples(),
            agg.sorted_correlation_ids(), agg.first_ts, agg.last_ts, agg.ts_width, agg.bound)


def test_add_clean_of_a_record_equals_add_of_its_sanitized_event():
    from branchpy_telemetry.client.contracts.event import EventRecord

    r = random.Random(11)
    for _ in range(20):
        by_add, by_clean = PartAggregates(), PartAggregates()
        for i in range(r.randint(1, 40)):
            ev, _, _ = _random_event(r, i)
            ts = f"2026-11-28T01:{r.randint(0, 59):02d}:00.000Z"  # add_clean takes wire-form times
            ev = msgspec.structs.replace(ev, error_hash=None, error_code=None, ts=ts)
            rec = EventRecord(event_id=ev.event_id, ts=ev.ts, category=ev.category, source=ev.source,
                              name=ev.name, duration_ms=ev.duration_ms, status=ev.status,
                              correlation_id=ev.correlation_id)
            by_add.add(ev, None, None)
            by_clean.add_clean(rec)
        assert _state(by_clean) == _state(by_add)
