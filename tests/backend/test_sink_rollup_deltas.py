"""compute_deltas (the per-event hot loop of ingest) against a plain recount of
the same rows, with events out of time order, several hours, naive and offset
timestamps, missing durations, sessions and error hashes."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import msgspec
import pytest

from branchpy_telemetry.backend.sinks import histogram
from branchpy_telemetry.backend.sinks.rollups import HOUR, compute_deltas, event_rows

from .conftest import make_event, make_package


def recount(rows: list[tuple]) -> dict:
    """Every aggregate computed on its own, the obvious way."""
    hour = {r[0]: (r[3] // 1_000_000) - (r[3] // 1_000_000) % HOUR for r in rows}
    hours: dict = {}
    for r in rows:
        cell = hours.setdefault(hour[r[0]], [0, 0, 0, 0, 0.0])
        cell[0] += 1
        cell[1] += r[8] == "error"
        cell[2] += bool(r[8])
        if r[7] is not None:
            cell[3] += 1
            cell[4] += r[7]
    dims = {("category", hour[r[0]], r[4]) for r in rows} | {("source", hour[r[0]], r[5]) for r in rows}
    dim_counts = {d: sum(1 for r in rows if hour[r[0]] == d[1] and r[4 if d[0] == "category" else 5] == d[2])
                  for d in dims}
    hist: dict = {}
    for r in rows:
        if r[7] is not None:
            hist.setdefault(hour[r[0]], Counter())[histogram.bucket_of(r[7])] += 1
    sessions = {}
    for sid in {r[9] for r in rows if r[9]}:
        mine = [r for r in rows if r[9] == sid]
        sessions[sid] = [min(r[3] for r in mine), max(r[3] for r in mine), len(mine),
                         sum(r[8] == "error" for r in mine)]
    errors = {}
    for h in {r[12] for r in rows if r[12]}:
        mine = [r for r in rows if r[12] == h]
        latest = max(mine, key=lambda r: (r[3], r[0]))
        errors[h] = [latest[11], latest[6], len(mine), latest[3], latest[0]]
    return {"hours": hours, "dims": dim_counts, "hist": {h: dict(c) for h, c in hist.items()},
            "sessions": sessions, "errors": errors, "events": len(rows),
            "error_events": sum(r[8] == "error" for r in rows)}


def mixed_rows(seed: int) -> list[tuple]:
    events = [make_event(i, seed=seed, step=timedelta(minutes=7)) for i in range(400)]
    events[3] = msgspec.structs.replace(events[3], ts="2026-11-20T09:30:00", duration_ms=0.0)  # naive = UTC
    events[4] = msgspec.structs.replace(events[4], ts="2026-11-20T11:59:59.999999+02:00", session_id=None)
    events[5] = msgspec.structs.replace(events[5], ts="2026-11-19T23:59:59.999999Z", duration_ms=1e9)
    events[6] = msgspec.structs.replace(events[6], ts=events[7].ts, status="error", error_code="E1",
                                        error_hash="sha256:" + "f" * 64)
    events[7] = msgspec.structs.replace(events[7], status="error", error_code="E2",
                                        error_hash="sha256:" + "f" * 64)
    random.Random(seed).shuffle(events)
    return event_rows(make_package(events=events))


@pytest.mark.parametrize("seed", [501, 502, 503])
def test_compute_deltas_matches_a_plain_recount_of_shuffled_rows(seed):
    rows = mixed_rows(seed)
    got = msgspec.to_builtins(compute_deltas(rows))
    want = recount(rows)
    for name in ("dims", "hist", "sessions", "errors", "events", "error_events"):
        assert msgspec.to_builtins(want[name]) == got[name], name
    assert set(got["hours"]) == set(want["hours"])
    for h, cell in want["hours"].items():
        assert got["hours"][h][:4] == cell[:4]
        assert got["hours"][h][4] == pytest.approx(cell[4])


def test_compute_deltas_of_no_rows_is_empty():
    d = compute_deltas([])
    assert (d.hours, d.dims, d.hist, d.sessions, d.errors) == ({}, {}, {}, {}, {})
    assert (d.events, d.error_events) == (0, 0)
