"""Stateless backends on a Galera cluster: throughput and write conflicts.

16 uploaders (threads, one install each) post new packages whose events all
fall in the same two hours to `serve --workers 4` instances, in the same run:

- one instance on a single MariaDB server (the harness's, same settings as
  the cluster nodes, no replication): the baseline;
- one instance on Galera node 1;
- two instances, on nodes 1 and 2 (uploader i posts to instance i % 2);
- the same two instances with `write_shards=1`: every upload writes the same
  aggregate rows, as before they were striped.

Reported per configuration: uploads/s and events/s over the wall clock,
latency p50/p95, conflicts (rolled-back attempts, read from each instance's
GET /metrics) per upload, retries exhausted, 5xx. Every configuration must
store every accepted event exactly once (checked); nothing asserts on time.

    BRANCHPY_BENCH=full .venv/bin/python -m pytest tests/bench/test_bench_galera.py -q
"""

from __future__ import annotations

import pytest

from ..galera.cluster import StandaloneServer
from ..galera.load import (
    encode_all,
    read,
    run_uploaders,
    start_instance,
    total_counters,
    uploader_packages,
    wait_for,
)
from .conftest import full_size, scaled

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


def test_bench_galera_one_vs_two_instances_vs_single_mariadb(galera_cluster, single_server, tmp_path, report):
    per_uploader = scaled(full=24, smoke=2)
    events = scaled(full=200, smoke=40)
    rows, summary = [], {}
    for run, (label, where, nodes, settings) in enumerate(CONFIGS):
        servers = single_server if where == "single" else galera_cluster
        database = servers.create_database()
        instances = [start_instance(tmp_path, servers.nodes[n - 1].url(database), **settings) for n in nodes]
        try:
            bodies = encode_all([uploader_packages(i, per_uploader, events, run=run)
                                 for i in range(UPLOADERS)])
            result = run_uploaders(instances, bodies)
            counters = total_counters(instances)
            expected = result.accepted
            for instance in instances:  # exactly once, read through every instance (replication may lag)
                wait_for(lambda i=instance, n=expected: read(i, "/stats")["events"] == n, 30,
                         f"{label}: /stats events == {expected}")
        finally:
            for instance in instances:
                instance.stop()
        assert not result.errors, result.errors[:3]
        assert result.accepted == UPLOADERS * per_uploader * events
        uploads = result.uploads
        five_xx = sum(n for code, n in result.statuses.items() if code >= 500)
        summary[label] = (uploads / result.wall_s, counters["conflicts"] / uploads)
        rows.append([label, uploads, uploads / result.wall_s, result.accepted / result.wall_s,
                     result.median_ms, result.percentile_ms(0.95), counters["conflicts"],
                     f"{100 * counters['conflicts'] / uploads:.1f} %", int(counters["exhausted"]), five_xx])
    base = summary["Galera, 1 instance"][0]
    report(f"Galera: {UPLOADERS} uploaders, {per_uploader} packages of {events} events each, "
           "serve --workers 4",
           ["configuration", "uploads", "uploads/s", "events/s", "p50 ms", "p95 ms", "conflicts",
            "conflicts/upload", "exhausted", "5xx"], rows)
    report("Galera: throughput against one instance on the cluster", ["configuration", "x 1 instance"],
           [[label, value[0] / base] for label, value in summary.items()])
    if full_size():
        print({label: f"{value[0]:.1f} uploads/s, {100 * value[1]:.1f} % conflicts" for label, value in
               summary.items()})
