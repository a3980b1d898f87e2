"""Concurrent uploaders against `serve` instances, shared by the Galera
acceptance tests and the Galera benchmark.

An instance is a real `branchpy-telemetry-backend serve --workers 4`
subprocess on a random port whose database is one node (or server) of the
harness. Uploaders are threads of this process, each an install with its own
governance id and sessions, posting pre-encoded packages whose events all
fall in the same two hours: the case where, before the aggregates were
striped, every upload wrote the same rows.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import msgspec
import requests
from prometheus_client.parser import text_string_to_metric_families

from branchpy_telemetry.client.contracts.schema import TelemetryPackage

from ..backend.conftest import BASE_TS, governance_id_for, make_package
from ..backend.live_backend import LiveBackend, clean_env, start_backend
from ..polling import wait_until

UPLOAD_HEADERS = {"Content-Type": "application/json"}


def start_instance(tmp_path: Path, db_url: str, *, workers: int = 4, **settings: str) -> LiveBackend:
    """`serve --workers N --db URL` with the rate limiter off (measuring, not throttling)."""
    directory = tmp_path / f"serve-{uuid.uuid4().hex[:6]}"
    env = clean_env(directory / "home", upload_rate_per_s="0", query_rate_per_s="0", **settings)
    backend = start_backend(directory, env, [db_url], workers=workers)
    backend.db_url = db_url
    return backend


def uploader_packages(uploader: int, count: int, events: int, *, run: int = 0) -> list[TelemetryPackage]:
    """`count` packages of one install: new events each, 4 sessions, all in BASE_TS's first two hours."""
    return [make_package(events, seed=run * 1_000_000 + uploader * 1000 + n, sessions=4,
                         start=BASE_TS + timedelta(minutes=(7 * uploader + 3 * n) % 90),
                         step=timedelta(seconds=1), governance_id=governance_id_for(run * 1000 + uploader))
            for n in range(count)]


def write_counters(instance: LiveBackend) -> dict[str, float]:
    """This instance's store_package counters from GET /metrics: commits, conflicts (all causes)
    and per cause, exhausted."""
    response = requests.get(instance.api + "/metrics", headers=instance.headers("read"), timeout=30)
    response.raise_for_status()
    out: Counter[str] = Counter()
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.labels.get("op") != "store_package":
                continue
            if sample.name == "branchpy_sink_write_commits_total":
                out["commits"] += sample.value
            elif sample.name == "branchpy_sink_write_conflicts_total":
                out["conflicts"] += sample.value
                out[f"conflicts.{sample.labels['cause']}"] += sample.value
            elif sample.name == "branchpy_sink_write_retries_exhausted_total":
                out["exhausted"] += sample.value
    return dict(out)


def total_counters(instances: list[LiveBackend]) -> Counter[str]:
    total: Counter[str] = Counter()
    for instance in instances:
        total.update(write_counters(instance))
    return total


@dataclass
class LoadResult:
    statuses: Counter = field(default_factory=Counter)
    accepted: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def uploads(self) -> int:
        return sum(self.statuses.values())

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else 0.0


def run_uploaders(instances: list[LiveBackend], bodies: list[list[bytes]], *,
                  timeout: float = 600) -> LoadResult:
    """One thread per uploader; uploader i posts its bodies, one after the other, to instance i % n.
    No client-side retry: every answer is recorded as it came."""
    result = LoadResult()
    lock = threading.Lock()

    def uploader(index: int) -> None:
        instance = instances[index % len(instances)]
        headers = {**instance.headers("ingest"), **UPLOAD_HEADERS}
        with requests.Session() as session:
            for body in bodies[index]:
                started = time.perf_counter()
                try:
                    response = session.post(instance.api + "/upload", data=body, headers=headers, timeout=120)
                except requests.RequestException as exc:
                    with lock:
                        result.errors.append(f"uploader {index}: {type(exc).__name__}: {exc}")
                    continue
                elapsed = time.perf_counter() - started
                with lock:
                    result.statuses[response.status_code] += 1
                    result.latencies.append(elapsed)
                    if response.status_code in (200, 201):
                        result.accepted += response.json()["accepted_events"]

    threads = [threading.Thread(target=uploader, args=(i,), name=f"uploader-{i}") for i in range(len(bodies))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, started + timeout - time.monotonic()))
    result.wall_s = time.monotonic() - started
    if any(thread.is_alive() for thread in threads):
        result.errors.append(f"uploaders still running after {timeout:g}s")
    return result


def encode_all(packages: list[list[TelemetryPackage]]) -> list[list[bytes]]:
    return [[msgspec.json.encode(p) for p in mine] for mine in packages]


def read(instance: LiveBackend, path: str, **params) -> object:
    response = requests.get(instance.api + path, params=params, headers=instance.headers("read"), timeout=30)
    response.raise_for_status()
    return response.json()


def wait_for(predicate, timeout: float, what: str) -> None:
    """Poll `predicate()` until true; fail naming `what` after `timeout` seconds."""
    wait_until(predicate, timeout=timeout, what=what, interval=0.2)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (/proc/PID/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def machine_ticks() -> tuple[int, int]:
    """(idle, all) CPU ticks of the whole machine so far (/proc/stat): every process, ours or not."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return values[3] + values[4], sum(values)  # idle + iowait
