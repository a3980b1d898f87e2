"""CompositeSink failure policy, with children made to fail for real:
a dropped MySQL database, a MySQL row lock that stalls a secondary, a locked
SQLite primary. (Catching up: test_sink_composite_catch_up.py.)"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime

import pymysql
import pytest
from structlog.testing import capture_logs

from branchpy_telemetry.backend.sinks.base import ApiKeyRecord, EventFilter, SinkError
from branchpy_telemetry.backend.sinks.composite import CompositeSink
from branchpy_telemetry.backend.sinks.memory import MemorySink
from branchpy_telemetry.backend.sinks.mysql import MySQLTelemetrySink
from branchpy_telemetry.backend.sinks.sqlite import LocalSQLiteSink

from ..polling import wait_until
from .conftest import make_package, mysql_server_url

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def store(sink, package):
    return sink.store_package(package, receipt="sha256:r", body_bytes=10, received_at=NOW)


def test_writes_reach_every_child_and_reads_come_from_the_primary(tmp_path):
    primary, secondary = LocalSQLiteSink(tmp_path / "p.db"), MemorySink()
    sink = CompositeSink([primary, secondary])
    try:
        result = store(sink, make_package(30))
        assert result.accepted_events == 30
        assert sink.flush(10)  # the secondary is written after the answer, never before it
        assert primary.stats().events == secondary.stats().events == 30
        assert sink.list_events(EventFilter(), 1, 5) == primary.list_events(EventFilter(), 1, 5)
        assert set(sink.member_health()) == {"primary:sqlite", "secondary1:memory"}
        assert sink.health().ok
    finally:
        sink.close()


def test_api_keys_live_in_the_primary_only(tmp_path):
    primary, secondary = MemorySink(), MemorySink()
    sink = CompositeSink([primary, secondary])
    sink.add_api_key(ApiKeyRecord(key_id="k1", key_hash="h" * 64, scope="read",
                                  created_at="2026-11-28T00:00:00Z"))
    assert primary.find_api_key("h" * 64) is not None
    assert secondary.list_api_keys() == []
    sink.close()


def test_dropped_secondary_database_leaves_uploads_working_and_health_degraded(composite_sink):
    assert store(composite_sink, make_package(20, seed=1)).accepted_events == 20
    assert composite_sink.flush(10)
    composite_sink.drop_secondary()  # DROP DATABASE on the MariaDB server, mid-test
    with capture_logs() as logs:
        result = store(composite_sink, make_package(20, seed=2))
        assert (result.accepted_events, result.duplicate) == (20, False)
        wait_until(lambda: not composite_sink.member_health()["secondary1:mysql"].ok)
    assert composite_sink.stats().events == 40  # the primary has both packages
    members = composite_sink.member_health()
    assert members["primary:sqlite"].ok is True
    secondary = members["secondary1:mysql"]
    assert (secondary.ok, secondary.state, secondary.behind) == (False, "down", 1)
    assert "Unknown database" in secondary.detail or "doesn't exist" in secondary.detail, secondary.detail
    health = composite_sink.health()
    assert health.ok is True and "secondary1:mysql" in health.detail
    assert any(e["event"] == "sink.secondary_failed" and e["sink"] == "secondary1:mysql" for e in logs)


def test_a_stalled_secondary_does_not_delay_the_upload_and_shows_as_behind(tmp_path, mysql_url):
    secondary = MySQLTelemetrySink.from_url(mysql_url)
    sink = CompositeSink([LocalSQLiteSink(tmp_path / "p.db"), secondary], probe_timeout=0.5)
    parts = pymysql.connect(**_admin_params(mysql_url))
    try:
        with parts.cursor() as cur:  # hold the packages table: the secondary's write blocks on it
            cur.execute("LOCK TABLES packages WRITE")
        started = time.monotonic()
        result = store(sink, make_package(50, seed=3))
        elapsed = time.monotonic() - started
        assert result.accepted_events == 50
        assert elapsed < 0.5, elapsed  # the primary's time only
        wait_until(lambda: sink.member_health()["secondary1:mysql"].behind == 1)  # stalled past 0.5 s
        health = sink.member_health()["secondary1:mysql"]
        assert (health.ok, health.state) == (True, "behind")
        with parts.cursor() as cur:  # release: the background write completes and the secondary recovers
            cur.execute("UNLOCK TABLES")
        wait_until(lambda: secondary.stats().events == 50)
        wait_until(lambda: sink.member_health()["secondary1:mysql"].state == "ok")
    finally:
        parts.close()
        sink.close()


def test_a_hung_secondary_gets_bounded_live_writes_and_the_rest_later_nothing_dropped(tmp_path, mysql_url):
    secondary = MySQLTelemetrySink.from_url(mysql_url, pool_size=2, pool_timeout=0.5)
    sink = CompositeSink([MemorySink(), secondary], probe_timeout=0.3, max_in_flight=2, max_workers=2,
                         retry_cap_s=0.5)
    blocker = pymysql.connect(**_admin_params(mysql_url))
    try:
        with blocker.cursor() as cur:
            cur.execute("LOCK TABLES packages WRITE")
        for seed in range(4):
            assert store(sink, make_package(5, seed=10 + seed)).accepted_events == 5
        wait_until(lambda: sink.member_health()["secondary1:mysql"].behind == 4)
        started = time.monotonic()
        health = sink.member_health()["secondary1:mysql"]
        assert time.monotonic() - started < 1.0
        assert health.behind == 4
        with blocker.cursor() as cur:
            cur.execute("UNLOCK TABLES")
        wait_until(lambda: secondary.stats().packages == 4)  # the two not sent live came from the backlog
        wait_until(lambda: sink.member_health()["secondary1:mysql"].state == "ok")
    finally:
        blocker.close()
        sink.close()


def test_primary_failure_is_the_answer(tmp_path):
    primary = LocalSQLiteSink(tmp_path / "p.db", busy_timeout_s=0.1)
    sink = CompositeSink([primary, MemorySink()])
    locker = sqlite3.connect(tmp_path / "p.db", isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(SinkError, match="locked"):
            store(sink, make_package(5))
        assert sink.health().ok is True  # reads still work in WAL mode... once the lock is gone
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        sink.close()


def _admin_params(url: str) -> dict:
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    assert parts.path.strip("/"), mysql_server_url()
    return dict(host=parts.hostname, port=parts.port or 3306, user=unquote(parts.username or "root"),
                password=unquote(parts.password or ""), database=parts.path.strip("/"), autocommit=False)
