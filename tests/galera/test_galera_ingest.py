"""Two stateless `serve` instances on two nodes of a real 3-node Galera cluster:
16 concurrent uploaders, some packages sent to both instances at the same
moment. Every event is stored exactly once on every node, and `/stats`,
`/aggregate/*` and the timeline give the true counts through either
instance, with no 5xx."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from datetime import datetime

import msgspec
import pytest
import requests

from branchpy_telemetry.client.contracts.timewindow import format_ts

from .load import UPLOAD_HEADERS, read, start_instance, total_counters, uploader_packages, wait_for

pytestmark = pytest.mark.galera

UPLOADERS = 16
PACKAGES = 6  # per uploader
EVENTS = 100
TWIN_EVERY = 3  # every third package of an uploader goes to both instances at once


def expected_answers(packages) -> dict:
    """/stats, /aggregate/* and the timeline, counted from the packages themselves."""
    events = [ev for p in packages for ev in p.summary.events]
    hours: dict[str, list[int]] = {}
    days: dict[str, list[int]] = {}
    for ev in events:
        ts = datetime.fromisoformat(ev.ts).replace(minute=0, second=0, microsecond=0)
        for buckets, start in ((hours, ts), (days, ts.replace(hour=0))):
            cell = buckets.setdefault(format_ts(start), [0, 0])
            cell[0] += 1
            cell[1] += ev.status == "error"

    def counts(field: str) -> list[dict]:
        by_key = Counter(getattr(ev, field) for ev in events)
        return [{"key": k, "count": n} for k, n in sorted(by_key.items(), key=lambda kv: (-kv[1], kv[0]))]

    return {
        "stats": {"events": len(events), "packages": len(packages),
                  "sessions": len({ev.session_id for ev in events}),
                  "errors": sum(ev.status == "error" for ev in events),
                  "installs": len({p.governance_id for p in packages})},
        "category": counts("category"), "source": counts("source"),
        "hour": [{"bucket": b, "count": n, "errors": e} for b, (n, e) in sorted(hours.items())],
        "day": [{"bucket": b, "count": n, "errors": e} for b, (n, e) in sorted(days.items())],
    }


def answers_through(instance) -> dict:
    stats = read(instance, "/stats")
    return {"stats": {k: v for k, v in stats.items() if k != "last_upload"},
            "category": read(instance, "/aggregate/category"), "source": read(instance, "/aggregate/source"),
            "hour": read(instance, "/aggregate/timeline", bucket="hour"),
            "day": read(instance, "/aggregate/timeline", bucket="day")}


def rows_on_every_node(cluster, database: str) -> list[tuple[int, int, int]]:
    """(events, distinct event ids, packages) as each node stores them."""
    out = []
    for node in cluster.nodes:
        with contextlib.closing(node.connect(database=database)) as conn, conn.cursor() as cur:
            cur.execute("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM events")
            events, distinct = cur.fetchone()
            cur.execute("SELECT COUNT(*) FROM packages")
            out.append((events, distinct, cur.fetchone()[0]))
    return out


def test_two_instances_on_two_nodes_store_every_event_exactly_once(galera_cluster, tmp_path):
    database = galera_cluster.create_database()
    instances = [start_instance(tmp_path, galera_cluster.nodes[i].url(database)) for i in (0, 1)]
    packages = [uploader_packages(u, PACKAGES, EVENTS, run=100) for u in range(UPLOADERS)]
    answers: dict[str, list[tuple[int, dict]]] = {}  # package_id -> [(status, body)]
    errors: list[str] = []
    lock = threading.Lock()

    def post(instance, body: bytes, package_id: str, barrier: threading.Barrier | None = None) -> None:
        headers = {**instance.headers("ingest"), **UPLOAD_HEADERS}
        try:
            if barrier is not None:
                barrier.wait(30)
            response = requests.post(instance.api + "/upload", data=body, headers=headers, timeout=120)
            with lock:
                answers.setdefault(package_id, []).append((response.status_code, response.json()))
        except Exception as exc:  # reported below: an uploader must not die silently
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")

    def uploader(u: int) -> None:
        for n, package in enumerate(packages[u]):
            body = msgspec.json.encode(package)
            if n % TWIN_EVERY == TWIN_EVERY - 1:  # the same package to both instances, released together
                barrier = threading.Barrier(2)
                twins = [threading.Thread(target=post, args=(i, body, package.package_id, barrier))
                         for i in instances]
                for t in twins:
                    t.start()
                for t in twins:
                    t.join(150)
            else:
                post(instances[u % 2], body, package.package_id)

    try:
        threads = [threading.Thread(target=uploader, args=(u,)) for u in range(UPLOADERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        assert not errors, errors[:3]
        statuses = Counter(status for replies in answers.values() for status, _ in replies)
        assert set(statuses) <= {200, 201}, statuses  # no 5xx, no 4xx
        twins = PACKAGES // TWIN_EVERY * UPLOADERS
        assert statuses == {201: UPLOADERS * PACKAGES, 200: twins}
        for package_id, replies in answers.items():  # each package stored by exactly one of its uploads
            assert sum(body["accepted_events"] for _, body in replies) == EVENTS, package_id
            assert sum(not body["duplicate"] for _, body in replies) == 1, package_id

        flat = [p for mine in packages for p in mine]
        expected = expected_answers(flat)
        assert expected["stats"]["events"] == UPLOADERS * PACKAGES * EVENTS
        for instance in instances:  # a node applies the other's commits a moment later: poll, then compare
            wait_for(lambda i=instance: answers_through(i) == expected, 30,
                     f"the true counts through {instance.url}")
        total = (UPLOADERS * PACKAGES * EVENTS, UPLOADERS * PACKAGES * EVENTS, UPLOADERS * PACKAGES)
        wait_for(lambda: rows_on_every_node(galera_cluster, database) == [total] * 3, 30,
                 "every node to hold every event once")
        counters = total_counters(instances)
        assert counters["exhausted"] == 0
        print(f"write conflicts: {counters['conflicts']:g} for {sum(statuses.values())} uploads "
              f"({dict((k, v) for k, v in counters.items() if k.startswith('conflicts.'))})")
    finally:
        for instance in instances:
            instance.stop()
