"""MySQLTelemetrySink specifics on the real MariaDB: the executemany fast path
really runs, 15 indexes, versioned migrations, pool behaviour (reconnect,
bound), and real failures translated to SinkError with nothing half-written."""

from __future__ import annotations

import socket
import threading
import uuid
from datetime import UTC, datetime

import pymysql
import pytest

from branchpy_telemetry.backend.sinks import mysql_schema
from branchpy_telemetry.backend.sinks.base import EventFilter, SinkError, TimeRange
from branchpy_telemetry.backend.sinks.mysql import MySQLTelemetrySink

from .conftest import _database_url, make_event, make_package

NOW = datetime(2026, 11, 28, tzinfo=UTC)


def store(sink, package):
    return sink.store_package(package, receipt="sha256:r", body_bytes=1, received_at=NOW)


def session_status(conn, name: str) -> int:
    with conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE %s", (name,))
        return int(cur.fetchone()[1])


def test_executemany_sends_multi_row_inserts_not_one_statement_per_row(mysql_url):
    sink = MySQLTelemetrySink.from_url(mysql_url, pool_size=1)  # one connection: its session counters
    try:
        with sink.pool.connection() as conn:
            before = session_status(conn, "Com_insert")
        result = store(sink, make_package(5000, sessions=50))
        with sink.pool.connection() as conn:
            inserts = session_status(conn, "Com_insert") - before
        assert result.accepted_events == 5000
        # package + events (a few 1 MB statements) + rollups + sessions + errors + install: ~13
        assert inserts < 60, f"{inserts} INSERTs for 5000 events: the executemany rewrite is not running"
    finally:
        sink.close()


def test_schema_has_the_15_documented_indexes(mysql_sink):
    with mysql_sink._read() as cur:
        cur.execute("SELECT DISTINCT table_name, index_name FROM information_schema.statistics "
                    "WHERE table_schema = ? AND index_name <> 'PRIMARY'", (mysql_sink.database,))
        indexes = {row[1] for row in cur.fetchall()}
    assert len(indexes) == mysql_schema.INDEX_COUNT == 15
    for name in indexes:
        assert name in mysql_schema.__doc__, f"{name} is not documented"


def test_the_event_insert_skips_only_a_stored_event_id(mysql_sink):
    """`INSERT ... ON DUPLICATE KEY UPDATE event_id = event_id` skips any unique-key
    conflict: event_id must be the events table's only unique key."""
    with mysql_sink._read() as cur:
        cur.execute("SELECT DISTINCT index_name FROM information_schema.statistics "
                    "WHERE table_schema = ? AND table_name = 'events' AND non_unique = 0",
                    (mysql_sink.database,))
        assert [row[0] for row in cur.fetchall()] == ["PRIMARY"]
    first = make_package(30, sessions=3)
    assert store(mysql_sink, first).accepted_events == 30
    # one package: 10 new events and 20 already stored
    again = make_package(events=[*make_package(10, seed=1).summary.events, *first.summary.events[:20]])
    result = store(mysql_sink, again)
    assert (result.accepted_events, result.duplicate_events) == (10, 20)
    assert mysql_sink.stats().events == 40


def test_migrate_is_versioned_and_idempotent(mysql_sink):
    assert mysql_sink.migrate() == mysql_sink.migrate() == mysql_schema.SCHEMA_VERSION
    with mysql_sink._read() as cur:
        cur.execute("SELECT version FROM schema_version")
        assert [r[0] for r in cur.fetchall()] == list(range(1, mysql_schema.SCHEMA_VERSION + 1))


def test_a_database_from_a_newer_version_is_refused(mysql_url):
    sink = MySQLTelemetrySink.from_url(mysql_url)
    with sink._txn() as cur:
        cur.execute("INSERT INTO schema_version VALUES (99)")
    sink.close()
    with pytest.raises(SinkError, match="newer"):
        MySQLTelemetrySink.from_url(mysql_url)


def test_migrate_creates_a_missing_database_and_health_reports_an_unmigrated_one(mysql_admin):
    name = f"bpt_{uuid.uuid4().hex[:12]}"
    try:
        unmigrated = MySQLTelemetrySink.from_url(_database_url(name), migrate=False)
        assert unmigrated.health().ok is False
        sink = MySQLTelemetrySink.from_url(_database_url(name))
        assert sink.health().ok is True
        assert store(sink, make_package(3)).accepted_events == 3
        sink.close()
        unmigrated.close()
    finally:
        with mysql_admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def test_an_unreachable_server_is_a_sink_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SinkError, match="OperationalError") as info:
        MySQLTelemetrySink.from_url(f"mysql://root@127.0.0.1:{port}/nothing", connect_timeout=1)
    assert isinstance(info.value.__cause__, pymysql.err.OperationalError)


def test_a_killed_connection_is_replaced_on_checkout(mysql_url, mysql_admin):
    sink = MySQLTelemetrySink.from_url(mysql_url, pool_size=1)
    try:
        with sink.pool.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT CONNECTION_ID()")
            victim = cur.fetchone()[0]
        with mysql_admin.cursor() as cur:
            cur.execute(f"KILL {int(victim)}")
        assert sink.stats().events == 0  # pinged, found dead, reconnected
    finally:
        sink.close()


def test_the_pool_is_bounded_and_an_exhausted_pool_is_a_sink_error(mysql_url):
    sink = MySQLTelemetrySink.from_url(mysql_url, pool_size=1, pool_timeout=0.2)
    errors: list[BaseException] = []
    try:
        with sink.pool.connection():
            thread = threading.Thread(target=lambda: _catch(errors, sink.stats))
            thread.start()
            thread.join(5)
        assert len(errors) == 1 and isinstance(errors[0], SinkError) and "exhausted" in str(errors[0])
        assert sink.stats().events == 0  # released: usable again
    finally:
        sink.close()


def _catch(errors, fn):
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - inspected by the test
        errors.append(exc)


def test_a_statement_failing_mid_store_rolls_back_every_row(mysql_sink):
    with mysql_sink._txn() as cur:
        cur.execute("CREATE TRIGGER boom BEFORE INSERT ON sessions FOR EACH ROW "
                    "IF NEW.session_id = 'boom' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'boom'; "
                    "END IF")
    events = [make_event(i) for i in range(10)] + [make_event(10, session_id="boom")]
    with pytest.raises(SinkError, match="boom"):
        store(mysql_sink, make_package(events=events))
    stats = mysql_sink.stats()
    assert (stats.events, stats.packages, stats.sessions) == (0, 0, 0)
    assert mysql_sink.list_events(EventFilter(), 1, 10).total == 0


def test_values_are_never_formatted_into_sql(mysql_sink):
    """A value full of quotes and placeholders round-trips exactly and leaves the schema intact."""
    evil = "x'); DROP TABLE events; -- %s ? \\"
    store(mysql_sink, make_package(events=[make_event(0, name=evil, session_id=evil)]))
    page = mysql_sink.list_events(EventFilter(name=evil), 1, 5)
    assert [item.name for item in page.items] == [evil]
    assert mysql_sink.sessions(TimeRange(), 5).items[0].session_id == evil
