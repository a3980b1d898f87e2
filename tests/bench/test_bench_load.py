"""Sustained load: 8 concurrent clients upload for 30 s
(3 s at smoke size) against `serve` with SQLite. Pass/fail: no 5xx, and
every event the server accepted is stored exactly once (count in = count
stored). Reports packages/s, events/s and latency percentiles.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter

import msgspec
import pytest
import requests

from ..backend.conftest import make_package
from ..backend.live_backend import start_sqlite_backend
from .conftest import scaled

pytestmark = pytest.mark.bench

CLIENTS = 8
EVENTS_PER_PACKAGE = 100


def test_bench_sustained_load_8_clients_no_5xx_no_lost_or_doubled_event(tmp_path, report):
    duration = scaled(full=30, smoke=3)
    server = start_sqlite_backend(tmp_path, upload_rate_per_s="0")  # measuring throughput, not the limiter
    statuses: Counter[int] = Counter()
    accepted = duplicates = 0
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + duration
    errors: list[BaseException] = []

    def client(n: int) -> None:
        nonlocal accepted, duplicates
        session = requests.Session()
        headers = {**server.headers("ingest"), "Content-Type": "application/json"}
        seq = 0
        try:
            while time.monotonic() < stop_at:
                seq += 1
                body = msgspec.json.encode(make_package(EVENTS_PER_PACKAGE, seed=n * 1_000_000 + seq))
                started = time.perf_counter()
                response = session.post(server.api + "/upload", data=body, headers=headers, timeout=60)
                elapsed = time.perf_counter() - started
                with lock:
                    statuses[response.status_code] += 1
                    latencies.append(elapsed)
                    if response.status_code == 201:
                        accepted += response.json()["accepted_events"]
                        duplicates += response.json()["duplicate_events"]
        except BaseException as exc:  # reported below; a client must not die silently
            errors.append(exc)
        finally:
            session.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 120)
    wall = time.monotonic() - started
    try:
        stats = requests.get(server.api + "/stats", headers=server.headers("read"), timeout=30).json()
    finally:
        server.stop()

    assert not errors, errors
    assert not [code for code in statuses if code >= 500], (statuses, server.logs()[-3000:])
    assert set(statuses) == {201}, statuses
    packages = statuses[201]
    assert stats["packages"] == packages
    assert stats["events"] == accepted == packages * EVENTS_PER_PACKAGE
    assert duplicates == 0
    lat = sorted(latencies)
    report(f"sustained load: {CLIENTS} clients, {duration} s, SQLite, {EVENTS_PER_PACKAGE} events/package",
           ["packages", "packages/s", "events/s", "p50 ms", "p95 ms", "max ms", "5xx"],
           [[packages, packages / wall, accepted / wall, statistics.median(lat) * 1000,
             lat[int(0.95 * (len(lat) - 1))] * 1000, lat[-1] * 1000, 0]])
