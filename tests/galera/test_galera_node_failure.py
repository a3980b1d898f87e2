"""A Galera node killed (SIGKILL to its pid) under load, then restarted.

Two `serve` instances write to nodes 1 and 2; 16 uploaders (8 per instance)
each hold an outbox of packages and deliver them with the daemon's own
uploader (`send_prepared`: retries with backoff, honours Retry-After).
When a third of the packages are in, node 2 dies. The uploaders of the
instance on node 1 keep delivering; those of the instance on node 2 get 503
(or connection errors) and keep their packages. Once node 1's side has
delivered more, node 2 is restarted, rejoins by IST and the waiting
packages are delivered. In the end every package is delivered, every event
is stored exactly once on every node, and both instances give the true
counts."""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections import Counter

import msgspec
import pytest
import requests

from branchpy_telemetry.client.contracts.config import Config, TelemetrySection
from branchpy_telemetry.daemon.delivery.uploader import PreparedUpload, send_prepared

from .load import read, start_instance, uploader_packages, wait_for
from .test_galera_ingest import answers_through, expected_answers, rows_on_every_node

pytestmark = pytest.mark.galera

UPLOADERS = 16
PACKAGES = 8  # per uploader
EVENTS = 100
DELIVERY_DEADLINE = 300.0  # seconds for the whole load, outage included


class RecordingSession(requests.Session):
    """A real session that notes the outcome of every request it sends (status or exception)."""

    def __init__(self, log: list) -> None:
        super().__init__()
        self.log = log

    def request(self, method, url, *args, **kwargs):
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.RequestException as exc:
            self.log.append((time.monotonic(), type(exc).__name__))
            raise
        self.log.append((time.monotonic(), response.status_code))
        return response


def prepared(package) -> PreparedUpload:
    body = msgspec.json.encode(package)
    return PreparedUpload(path=f"outbox/{package.package_id}.json", body=body, gzipped=gzip.compress(body),
                          sha256=hashlib.sha256(body).hexdigest(), package_id=package.package_id,
                          events=len(package.summary.events))


def test_a_killed_node_loses_nothing_and_its_clients_deliver_after_it_returns(galera_cluster, tmp_path):
    database = galera_cluster.create_database()
    instances = [start_instance(tmp_path, galera_cluster.nodes[i].url(database)) for i in (0, 1)]
    packages = [uploader_packages(u, PACKAGES, EVENTS, run=200) for u in range(UPLOADERS)]
    delivered: list[tuple[float, int, str]] = []  # (when, instance index, outcome)
    attempts: dict[int, list] = {u: [] for u in range(UPLOADERS)}
    failures: list[str] = []
    lock = threading.Lock()

    def uploader(u: int) -> None:
        side = u % 2
        config = Config(telemetry=TelemetrySection(endpoint=instances[side].api,
                                                   api_key=instances[side].keys["ingest"]))
        outbox = [prepared(p) for p in packages[u]]
        with RecordingSession(attempts[u]) as session:
            for item in outbox:  # a package leaves the outbox only once delivered
                outcome = send_prepared(item, config, session=session, max_attempts=1000, backoff_base=0.2,
                                        backoff_cap=2.0, max_total_wait=DELIVERY_DEADLINE, read_timeout=60.0)
                with lock:
                    if outcome.outcome in ("delivered", "duplicate"):
                        delivered.append((time.monotonic(), side, outcome.outcome))
                    else:
                        failures.append(f"uploader {u}: {outcome.outcome} {outcome.status_code} "
                                        f"{outcome.error_code}: {outcome.server_message}")
                        return

    def count(side: int | None = None, after: float = 0.0) -> int:
        with lock:
            return sum(1 for when, s, _ in delivered if (side is None or s == side) and when > after)

    threads = [threading.Thread(target=uploader, args=(u,)) for u in range(UPLOADERS)]
    try:
        for t in threads:
            t.start()
        total = UPLOADERS * PACKAGES
        wait_for(lambda: count() >= total // 3, 120, "a third of the packages delivered")
        killed_at = time.monotonic()
        galera_cluster.kill(2)
        # the survivors carry on: node 1's instance delivers while node 2 is down
        wait_for(lambda: count(side=0, after=killed_at) >= 12, 120,
                 "deliveries through node 1 after the kill")
        wait_for(lambda: any(when > killed_at and status != 201 and status != 200
                             for u in range(1, UPLOADERS, 2) for when, status in list(attempts[u])),
                 60, "node 2's instance to refuse an upload")
        health = [requests.get(i.api + "/health", timeout=30).status_code for i in instances]
        assert health == [200, 503]  # what takes node 2's instance out of a load balancer
        restarting_at = time.monotonic()  # node 2's clients may deliver as soon as it accepts, mid-restart
        galera_cluster.restart(2, donor="node3")
        restarted_at = time.monotonic()
        for t in threads:
            t.join(DELIVERY_DEADLINE)
        assert not [t for t in threads if t.is_alive()], "uploaders still running"
        assert not failures, failures[:3]
        assert count() == total  # every package left its outbox delivered (or found already stored)

        # node 1's clients never saw an error; node 2's saw refusals, kept their packages, delivered later
        side0 = Counter(status for u in range(0, UPLOADERS, 2) for _, status in attempts[u])
        assert set(side0) <= {200, 201}, side0
        side1_after = Counter(status for u in range(1, UPLOADERS, 2) for when, status in attempts[u]
                              if killed_at < when < restarting_at)
        assert set(side1_after) - {200, 201}, side1_after
        assert count(side=1, after=restarting_at) > 0
        assert [requests.get(i.api + "/health", timeout=30).status_code for i in instances] == [200, 200]
        meanwhile = [count(side=s, after=killed_at) - count(side=s, after=restarted_at) for s in (0, 1)]
        print(f"node 2 down {restarted_at - killed_at:.1f} s (restart included); delivered meanwhile through "
              f"node 1: {meanwhile[0]}, node 2: {meanwhile[1]}; node 2's clients saw {dict(side1_after)}")

        flat = [p for mine in packages for p in mine]
        expected = expected_answers(flat)
        for instance in instances:
            wait_for(lambda i=instance: answers_through(i) == expected, 60,
                     f"the true counts through {instance.url}")
        rows = (total * EVENTS, total * EVENTS, total)
        wait_for(lambda: rows_on_every_node(galera_cluster, database) == [rows] * 3, 60,
                 "every node to hold every event once")
        assert read(instances[1], "/stats")["events"] == total * EVENTS
    finally:
        for instance in instances:
            instance.stop()
        if galera_cluster.nodes[1].pid is None:  # the next test gets a whole cluster
            galera_cluster.restart(2, donor="node3")
