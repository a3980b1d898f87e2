"""The storage layer's own ingest cost: `store_package` (dedupe lookups,
events, rollups, sessions, error groups, histograms, one transaction) vs the
raw driver inserting the same event rows into the same schema in one
transaction (tests/bench/ingest_baseline.py). No HTTP: this isolates what the
sink adds; test_bench_ingest.py measures the whole upload.

    BRANCHPY_BENCH=full .venv/bin/python -m pytest tests/bench/test_bench_ingest_raw.py -s -q
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime

import pytest

from branchpy_telemetry.backend.sinks.registry import open_sink
from branchpy_telemetry.backend.sinks.rollups import event_rows

from ..backend.conftest import fresh_mysql_database, make_package
from ..service_markers import sink_kind_params
from .conftest import scaled
from .ingest_baseline import raw_insert_rows

pytestmark = pytest.mark.bench


def store_seconds(url: str, package) -> float:
    sink = open_sink(url)
    try:
        started = time.perf_counter()
        sink.store_package(package, receipt="sha256:bench", body_bytes=0, received_at=datetime.now(UTC))
        return time.perf_counter() - started
    finally:
        sink.close()


@pytest.mark.parametrize("kind", sink_kind_params(["sqlite", "mysql"]))
def test_bench_store_package_vs_raw_driver(kind, tmp_path, report):
    package = make_package(scaled(full=15_000, smoke=2_000), seed=9)  # ~5 MB of JSON at full size
    rows = event_rows(package)
    rounds = scaled(full=3, smoke=1)
    ours, raw = [], []
    for i in range(rounds):
        if kind == "sqlite":
            ours.append(store_seconds(f"sqlite:///{tmp_path}/ours{i}.db", package))
            raw.append(raw_insert_rows(f"sqlite:///{tmp_path}/raw{i}.db", rows))
        else:
            with fresh_mysql_database() as (url, _):
                ours.append(store_seconds(url, package))
            with fresh_mysql_database() as (url, _):
                raw.append(raw_insert_rows(url, rows))
    o, r = statistics.median(ours), statistics.median(raw)
    report(f"sink ingest, {kind}: one package of {len(rows):,} events, median of {rounds}",
           ["path", "seconds", "events/s", "ratio"],
           [["store_package (events + rollups, one transaction)", o, len(rows) / o, o / r],
            ["raw driver: events only, one transaction", r, len(rows) / r, 1.0]])
