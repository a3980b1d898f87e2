"""LocalSQLiteSink specifics: connection settings, 5 indexes, versioned schema,
real failures (locked database, unwritable path, a statement failing mid-store)
translated to SinkError with nothing half-written."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime

import pytest

from branchpy_telemetry.backend.sinks.base import EventFilter, SinkError, TimeRange
from branchpy_telemetry.backend.sinks.sqlite import LocalSQLiteSink
from branchpy_telemetry.backend.sinks.sqlite_schema import SCHEMA_VERSION

from .conftest import make_event, make_package

NOW = datetime(2026, 11, 28, tzinfo=UTC)


def store(sink, package):
    return sink.store_package(package, receipt="sha256:r", body_bytes=1, received_at=NOW)


def test_connections_use_wal_normal_sync_64mib_cache_and_a_busy_timeout(sqlite_sink):
    conn = sqlite_sink._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA cache_size").fetchone()[0] == -65536
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000


def test_events_table_has_exactly_six_indexes(sqlite_sink):
    """The five of the first schema, and since version 3 the one listing an error group's events."""
    names = [r[0] for r in sqlite_sink._conn().execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL")]
    assert sorted(names) == ["ix_events_category_ts", "ix_events_error_hash_ts", "ix_events_name_ts",
                             "ix_events_session_ts", "ix_events_source_status_ts", "ix_events_ts"]


def test_schema_is_created_once_and_versioned(tmp_path):
    LocalSQLiteSink(tmp_path / "e.db").close()
    sink = LocalSQLiteSink(tmp_path / "e.db")  # reopening migrates nothing
    assert sink.migrate() == SCHEMA_VERSION
    versions = [r[0] for r in sink._conn().execute("SELECT version FROM schema_version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    sink.close()


def test_a_database_from_a_newer_version_is_refused(tmp_path):
    sink = LocalSQLiteSink(tmp_path / "e.db")
    sink._conn().execute("INSERT INTO schema_version VALUES (99)")
    sink.close()
    with pytest.raises(SinkError, match="newer"):
        LocalSQLiteSink(tmp_path / "e.db")


def test_each_thread_gets_its_own_connection(sqlite_sink):
    seen = []
    thread = threading.Thread(target=lambda: seen.append(sqlite_sink._conn()))
    thread.start()
    thread.join()
    assert seen[0] is not sqlite_sink._conn()


def test_locked_database_is_a_sink_error_and_nothing_is_written(tmp_path):
    sink = LocalSQLiteSink(tmp_path / "e.db", busy_timeout_s=0.1)
    locker = sqlite3.connect(tmp_path / "e.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(SinkError, match="database is locked") as info:
            store(sink, make_package(5))
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert sink.stats().events == 0
    sink.close()


def test_a_statement_failing_mid_store_rolls_back_every_row(sqlite_sink):
    sqlite_sink._conn().execute("CREATE TRIGGER boom BEFORE INSERT ON sessions WHEN NEW.session_id = 'boom' "
                                "BEGIN SELECT RAISE(ABORT, 'boom'); END")
    events = [make_event(i) for i in range(10)] + [make_event(10, session_id="boom")]
    with pytest.raises(SinkError, match="boom"):
        store(sqlite_sink, make_package(events=events))
    stats = sqlite_sink.stats()
    assert (stats.events, stats.packages, stats.sessions) == (0, 0, 0)
    assert sqlite_sink.list_events(EventFilter(), 1, 10).total == 0
    assert sqlite_sink.timeline("hour", TimeRange()) == []


def test_an_unusable_path_is_a_sink_error(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(SinkError):
        LocalSQLiteSink(tmp_path / "file" / "events.db")


def test_url_paths_are_relative_to_the_working_directory_or_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    LocalSQLiteSink.from_url("sqlite:///.branchpy/telemetry/events.db").close()
    assert (tmp_path / ".branchpy" / "telemetry" / "events.db").is_file()
    LocalSQLiteSink.from_url(f"sqlite:///{tmp_path}/abs/e.db").close()
    assert (tmp_path / "abs" / "e.db").is_file()
    with pytest.raises(SinkError, match="bad SQLite URL"):
        LocalSQLiteSink.from_url("sqlite://")
    with pytest.raises(SinkError, match="use memory://"):
        LocalSQLiteSink.from_url("sqlite:///:memory:")


def test_a_full_database_is_a_sink_error_and_nothing_is_written(sqlite_sink):
    """SQLITE_FULL for real: the page limit stands in for a full disk."""
    conn = sqlite_sink._conn()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 20}")
    with pytest.raises(SinkError, match="full"):
        store(sqlite_sink, make_package(3000))
    stats = sqlite_sink.stats()
    assert (stats.events, stats.packages) == (0, 0)
    conn.execute("PRAGMA max_page_count = 1073741823")
    assert store(sqlite_sink, make_package(3000)).accepted_events == 3000
