"""Stateless backends on a Galera cluster: throughput and write conflicts.

16 uploaders (threads, one install each) post new packages whose events all
fall in the same two hours to `serve --workers 4` instances, in the same run:

- one instance on a single MariaDB server (the harness's, same settings as
  the cluster nodes, no replication): the baseline;
- one instance on Galera node 1;
- two instances, on nodes 1 and 2 (uploader i posts to instance i % 2);
- the same two instances with `write_shards=1`: every upload writes the same
  aggregate rows, as before they were striped.

The configurations run interleaved, three rounds at full size, so a change
of load elsewhere on the machine hits them all alike. Reported per
configuration: uploads/s (median of the rounds, and their range) and
events/s over the wall clock, latency p50/p95, conflicts (rolled-back
attempts, read from each instance's GET /metrics) per upload, retries
exhausted, 5xx, and where the CPU went: the database servers' and the
instances' CPU time per upload, and how busy the whole machine was (every
process on it, ours or not). Every configuration must store every accepted
event exactly once (checked); nothing asserts on time.

    BRANCHPY_BENCH=full .venv/bin/python -m pytest tests/bench/test_bench_galera.py -q
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import pytest

from ..galera.cluster import StandaloneServer
from ..galera.load import (
    cpu_seconds,
    encode_all,
    machine_ticks,
    read,
    run_uploaders,
    start_instance,
    total_counters,
    uploader_packages,
    wait_for,
)
from .conftest import scaled

pytestmark = [pytest.mark.bench, pytest.mark.galera]

UPLOADERS = 16
# (label, where, Galera nodes or the single server, extra settings)
CONFIGS = [
    ("single MariaDB, 1 instance", "single", [1], {}),
    ("Galera, 1 instance", "galera", [1], {}),
    ("Galera, 2 instances", "galera", [1, 2], {}),
    ("Galera, 2 instances, write_shards=1", "galera", [1, 2], {"write_shards": "1"}),
]


@pytest.fixture(scope="module")
def single_server():
    with StandaloneServer.start() as server:
        yield server


@dataclass
class Measured:
    """One configuration, over every round."""
    uploads_per_s: list[float] = field(default_factory=list)
    uploads: int = 0
    events: int = 0
    conflicts: float = 0
    exhausted: float = 0
    five_xx: int = 0
    db_cpu_s: float = 0.0
    serve_cpu_s: float = 0.0
    busy: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


def measure(servers, nodes: list[int], settings: dict, bodies: list[list[bytes]], events: int, tmp_path,
            label: str, into: Measured) -> None:
    database = servers.create_database()
    instances = [start_instance(tmp_path, servers.nodes[n - 1].url(database), **settings) for n in nodes]
    try:
        db_pids = [node.pid for node in servers.nodes if node.pid is not None]
        serve_pids = [instance.proc.pid for instance in instances]
        before = cpu_seconds(db_pids), cpu_seconds(serve_pids), machine_ticks()
        result = run_uploaders(instances, bodies)
        after = cpu_seconds(db_pids), cpu_seconds(serve_pids), machine_ticks()
        counters = total_counters(instances)
        for instance in instances:  # exactly once, read through every instance (replication may lag)
            wait_for(lambda i=instance, n=result.accepted: read(i, "/stats")["events"] == n, 30,
                     f"{label}: /stats events == {result.accepted}")
    finally:
        for instance in instances:
            instance.stop()
    assert not result.errors, result.errors[:3]
    assert result.accepted == sum(len(mine) for mine in bodies) * events
    into.uploads_per_s.append(result.uploads / result.wall_s)
    into.uploads += result.uploads
    into.events += result.accepted
    into.conflicts += counters["conflicts"]
    into.exhausted += counters["exhausted"]
    into.five_xx += sum(n for code, n in result.statuses.items() if code >= 500)
    into.db_cpu_s += after[0] - before[0]
    into.serve_cpu_s += after[1] - before[1]
    into.busy.append(1 - (after[2][0] - before[2][0]) / max(1, after[2][1] - before[2][1]))
    into.latencies += result.latencies


def test_bench_galera_one_vs_two_instances_vs_single_mariadb(galera_cluster, single_server, tmp_path, report):
    per_uploader = scaled(full=16, smoke=2)
    rounds = scaled(full=3, smoke=1)
    events = scaled(full=200, smoke=40)
    measured = {label: Measured() for label, *_ in CONFIGS}
    for round_ in range(rounds):  # configurations interleaved: a load change elsewhere hits them all
        for run, (label, where, nodes, settings) in enumerate(CONFIGS):
            bodies = encode_all([uploader_packages(i, per_uploader, events, run=10 * round_ + run)
                                 for i in range(UPLOADERS)])
            servers = single_server if where == "single" else galera_cluster
            measure(servers, nodes, settings, bodies, events, tmp_path, label, measured[label])
    rows = []
    base = statistics.median(measured["Galera, 1 instance"].uploads_per_s)
    for label, m in measured.items():
        ordered = sorted(m.latencies)
        rate = statistics.median(m.uploads_per_s)
        rows.append([label, m.uploads, f"{rate:.1f} ({min(m.uploads_per_s):.1f}-{max(m.uploads_per_s):.1f})",
                     rate / base, m.events / m.uploads * rate, ordered[len(ordered) // 2] * 1000,
                     ordered[int(0.95 * (len(ordered) - 1))] * 1000, int(m.conflicts),
                     f"{100 * m.conflicts / m.uploads:.1f} %", int(m.exhausted), m.five_xx,
                     1000 * m.db_cpu_s / m.uploads, 1000 * m.serve_cpu_s / m.uploads,
                     f"{100 * statistics.mean(m.busy):.0f} %"])
    report(f"Galera: {UPLOADERS} uploaders x {per_uploader} packages of {events} events, serve --workers 4, "
           f"{rounds} interleaved round(s); uploads/s: median (min-max)",
           ["configuration", "uploads", "uploads/s", "x Galera 1 instance", "events/s", "p50 ms", "p95 ms",
            "conflicts", "conflicts/upload", "exhausted", "5xx", "DB CPU ms/upload", "serve CPU ms/upload",
            "machine busy"], rows)
