"""Write conflicts on the real MariaDB: the server itself answers error 1213
(a trigger SIGNALs it, the way a Galera certification conflict or a deadlock
reaches the client) for the first N inserts of a package. The sink rolls back
and runs the transaction again, counts each conflict, stores the package
once; past the retry deadline the upload is a 503 `sink_busy` with
Retry-After, nothing written, and `GET /metrics` shows it."""

from __future__ import annotations

import contextlib

import msgspec
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from branchpy_telemetry.backend.sinks.base import SinkBusyError
from branchpy_telemetry.backend.sinks.mysql import MySQLTelemetrySink
from branchpy_telemetry.backend.sinks.write_retry import RetryPolicy

from .conftest import database_connection, make_package
from .live_backend import clean_env, start_backend
from .test_sink_contract import store

pytestmark = pytest.mark.mysql
DEADLOCK = "Deadlock found when trying to get lock; try restarting transaction"


def arm_conflicts(url: str, n: int) -> None:
    """The next `n` package inserts fail with error 1213. The budget lives in an Aria table,
    which a rolled-back transaction does not restore."""
    with contextlib.closing(database_connection(url)) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS conflict_budget (n INT NOT NULL) ENGINE=Aria")
        cur.execute("DELETE FROM conflict_budget")
        cur.execute("INSERT INTO conflict_budget VALUES (%s)", (n,))
        cur.execute("DROP TRIGGER IF EXISTS conflict_on_package")
        cur.execute("CREATE TRIGGER conflict_on_package BEFORE INSERT ON packages FOR EACH ROW "
                    "IF (SELECT n FROM conflict_budget) > 0 THEN UPDATE conflict_budget SET n = n - 1; "
                    f"SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = '{DEADLOCK}'; END IF")


@pytest.fixture
def mysql_sink(mysql_url):
    """A sink on `mysql_url` (the database the conflicts are armed in)."""
    sink = MySQLTelemetrySink.from_url(mysql_url)
    yield sink
    sink.close()


def test_a_package_that_hits_two_conflicts_is_stored_once_on_the_third_attempt(mysql_sink, mysql_url):
    arm_conflicts(mysql_url, 2)
    result = store(mysql_sink, make_package(30, sessions=3))
    assert (result.accepted_events, result.duplicate) == (30, False)
    stats = mysql_sink.stats()
    assert (stats.events, stats.packages, stats.sessions) == (30, 1, 3)
    counted = mysql_sink.write_retrier.stats.snapshot()
    assert counted["conflicts"] == {("store_package", "conflict"): 2}
    assert counted["commits"] == {"store_package": 1} and counted["exhausted"] == {}


def test_past_the_deadline_the_write_gives_up_and_nothing_is_written(mysql_sink, mysql_url):
    mysql_sink.configure_writes(policy=RetryPolicy(deadline_s=0.3, base_s=0.01, cap_s=0.05))
    arm_conflicts(mysql_url, 10_000)
    with pytest.raises(SinkBusyError) as info:
        store(mysql_sink, make_package(30))
    assert info.value.retry_after_s >= 1
    stats = mysql_sink.stats()
    assert (stats.events, stats.packages, stats.sessions) == (0, 0, 0)
    counted = mysql_sink.write_retrier.stats.snapshot()
    assert counted["exhausted"] == {"store_package": 1}
    assert counted["conflicts"][("store_package", "conflict")] >= 3


def metric_values(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value}, parsed by Prometheus' own client library."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_http_503_with_retry_after_only_when_the_deadline_is_spent_and_metrics_show_it(tmp_path, mysql_url):
    env = clean_env(tmp_path / "home", write_retry_deadline_s="0.4", write_shards="8")
    server = start_backend(tmp_path, env, [mysql_url])
    headers = {**server.headers("ingest"), "Content-Type": "application/json"}
    body = msgspec.json.encode(make_package(25, seed=4))
    try:
        arm_conflicts(mysql_url, 3)  # retried inside the deadline: the client never sees them
        stored = requests.post(server.api + "/upload", data=body, headers=headers, timeout=30)
        assert stored.status_code == 201, stored.text
        arm_conflicts(mysql_url, 10_000)
        busy = requests.post(server.api + "/upload", data=msgspec.json.encode(make_package(5, seed=5)),
                             headers=headers, timeout=30)
        assert busy.status_code == 503, busy.text
        assert busy.json()["error"]["code"] == "sink_busy"
        assert int(busy.headers["Retry-After"]) >= 1
        assert requests.get(server.api + "/metrics", timeout=10).status_code == 401
        ingest_only = requests.get(server.api + "/metrics", headers=server.headers("ingest"), timeout=10)
        assert ingest_only.status_code == 403
        response = requests.get(server.api + "/metrics", headers=server.headers("read"), timeout=10)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        values = metric_values(response.text)
        label = (("op", "store_package"), ("sink", "mysql"))
        assert values[("branchpy_sink_write_commits_total", label)] == 1
        assert values[("branchpy_sink_write_retries_exhausted_total", label)] == 1
        conflicts = values[("branchpy_sink_write_conflicts_total", (("cause", "conflict"), *label))]
        assert conflicts >= 3 + 2
        assert values[("branchpy_sink_write_conflicts_total", (("cause", "node_not_ready"), *label))] == 0
        assert values[("branchpy_sink_write_shards", (("sink", "mysql"),))] == 8
        assert values[("branchpy_sink_write_retry_deadline_seconds", (("sink", "mysql"),))] == 0.4
        stats = requests.get(server.api + "/stats", headers=server.headers("read"), timeout=10).json()
        assert (stats["events"], stats["packages"]) == (25, 1)  # the 503 wrote nothing
    finally:
        server.stop()
