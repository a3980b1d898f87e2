"""A database written before the aggregates were striped (schema version 1), and
before the dashboard's breakdowns existed (version 3), is brought to the current
schema without losing a count, on SQLite (opening the
file) and MySQL (`branchpy-telemetry-backend migrate`).

`fixtures/schema_v1_rows.json` holds every row the version-1 write path
stored for `v1_packages()` (written by LocalSQLiteSink at version 1; the
MySQL sink wrote the same rows through the same code). The test loads them
into a version-1 schema, migrates, and compares every query's answer with a
MemorySink fed the same packages; then keeps uploading, and compares again.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from branchpy_telemetry.backend.sinks import mysql_schema, sqlite_schema
from branchpy_telemetry.backend.sinks.memory import MemorySink
from branchpy_telemetry.backend.sinks.mysql import MySQLTelemetrySink
from branchpy_telemetry.backend.sinks.sqlite import LocalSQLiteSink
from branchpy_telemetry.backend.sinks.usage_types import UsageFilter

from ..conftest import console_script
from .conftest import BASE_TS, database_connection
from .legacy_packages import legacy_package
from .sink_answers import answers

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FIXTURE = Path(__file__).parent / "fixtures" / "schema_v1_rows.json"
STRIPED = ("rollup_hour", "rollup_dim", "hist", "session_hour", "error_groups")


def v1_packages():
    """The packages behind the fixture: four of 60 events, then one repeating 60 of them."""
    out = [legacy_package(60, seed=900 + s, start=BASE_TS + timedelta(minutes=50 * s),
                        step=timedelta(seconds=83), sessions=3, governance_id=f"gov-{s % 2}",
                        package_id=str(uuid.UUID(int=900 + s)))
           for s in range(4)]
    out.append(legacy_package(80, seed=901, start=BASE_TS + timedelta(minutes=50), step=timedelta(seconds=83),
                            sessions=3, governance_id="gov-1", package_id=str(uuid.UUID(int=999))))
    return out


def later_packages():
    """Uploads after the migration: new events in the same hours, a repeat, a new install."""
    return [legacy_package(70, seed=950, start=BASE_TS + timedelta(minutes=20), step=timedelta(seconds=61),
                         sessions=3, governance_id="gov-0"),
            legacy_package(90, seed=902, start=BASE_TS + timedelta(minutes=100), step=timedelta(seconds=83),
                         sessions=3, governance_id="gov-7")]


def store_all(sink, packages, first: int = 0) -> None:
    for i, package in enumerate(packages, start=first):
        sink.store_package(package, receipt=f"sha256:{i:064x}", body_bytes=1000 + i,
                           received_at=NOW + timedelta(minutes=i))


def fixture_rows() -> dict[str, tuple[list[str], list[list]]]:
    tables = json.loads(FIXTURE.read_text())["tables"]
    return {name: (t["columns"], [[bytes.fromhex(v["hex"]) if isinstance(v, dict) else v for v in row]
                                  for row in t["rows"]])
            for name, t in tables.items() if name != "schema_version"}


def insert_fixture(cur, placeholder: str) -> None:
    """The version-1 rows, into the version-1 tables (replacing migration 1's empty totals row)."""
    cur.execute("DELETE FROM totals")
    for table, (columns, rows) in fixture_rows().items():
        if rows:
            marks = ", ".join([placeholder] * len(columns))
            cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def reference() -> MemorySink:
    sink = MemorySink()
    store_all(sink, v1_packages())
    return sink


def assert_same_answers(sink, expected: MemorySink) -> None:
    """Every answer but what depends on the Python of packages stored before version 3 (never kept)."""
    got, want = answers(sink, python=False), answers(expected, python=False)
    mismatched = [key for key in want if got[key] != want[key]]
    assert mismatched == [], f"{sink.kind} disagrees with memory on {mismatched[:5]}"


def assert_python_unknown_before_version_3(sink) -> None:
    """The breakdowns were rebuilt from the stored events (backfill.py): every one of them is counted,
    under the version and OS its package stored, and an unknown ("") Python."""
    by_python = sink.usage(UsageFilter(), ("python",))
    assert [(g.key, g.events) for g in by_python] == [([""], 260)]
    by_platform = sink.usage(UsageFilter(), ("version", "os"))
    assert [(g.key, g.events) for g in by_platform] == [(["1.4.0", "linux"], 260)]


def test_the_fixture_is_what_the_packages_give():
    """Guard: the rows really are these packages' (else the comparisons below prove nothing)."""
    rows = fixture_rows()
    assert len(rows["events"][1]) == 260 and len(rows["packages"][1]) == 5
    columns, (totals,) = rows["totals"]
    stats = reference().stats()
    assert dict(zip(columns, totals, strict=True))["events"] == stats.events == 260
    assert "shard" not in rows["rollup_hour"][0]


def test_a_version_1_sqlite_file_is_migrated_on_open_without_losing_a_count(tmp_path):
    path = tmp_path / "v1.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute(sqlite_schema.SCHEMA_VERSION_TABLE)
        for statement in sqlite_schema.MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (1)")
        insert_fixture(conn.cursor(), "?")
    expected = reference()
    sink = LocalSQLiteSink(path)
    try:
        for table in STRIPED:
            assert sink._conn().execute(f"SELECT DISTINCT shard FROM {table}").fetchall() == [(0,)], table
        assert_same_answers(sink, expected)
        assert_python_unknown_before_version_3(sink)
        later = later_packages()
        store_all(sink, later, first=10)
        store_all(expected, later, first=10)
        assert_same_answers(sink, expected)
        versions = [r[0] for r in sink._conn().execute("SELECT version FROM schema_version")]
        assert versions == list(range(1, sqlite_schema.SCHEMA_VERSION + 1))
    finally:
        sink.close()


def test_a_version_1_mysql_database_is_migrated_by_the_cli_without_losing_a_count(mysql_url, tmp_path):
    conn = database_connection(mysql_url)
    with contextlib.closing(conn), conn.cursor() as cur:
        cur.execute(mysql_schema.SCHEMA_VERSION_TABLE)
        for statement in mysql_schema.migration_statements(1, "utf8mb4_nopad_bin"):
            cur.execute(statement)
        cur.execute("INSERT INTO schema_version VALUES (1)")
        insert_fixture(cur, "%s")
    migrated = subprocess.run([console_script("branchpy-telemetry-backend"), "migrate", "--db", mysql_url],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.splitlines() == [f"schema version 1 -> {mysql_schema.SCHEMA_VERSION}",
                                            f"schema version {mysql_schema.SCHEMA_VERSION}"]
    expected = reference()
    sink = MySQLTelemetrySink.from_url(mysql_url, migrate=False)
    try:
        assert sink.health().ok
        assert_same_answers(sink, expected)
        assert_python_unknown_before_version_3(sink)
        later = later_packages()
        store_all(sink, later, first=10)
        store_all(expected, later, first=10)
        assert_same_answers(sink, expected)
    finally:
        sink.close()


@pytest.mark.parametrize("kind", ["sqlite", "mysql"])
def test_every_striped_table_keys_on_its_natural_key_then_shard(kind, sqlite_sink, mysql_sink):
    """The pattern shards.py documents: `shard` is the last primary-key column."""
    natural = {"rollup_hour": ["hour"], "rollup_dim": ["dim", "hour", "dkey"], "hist": ["level", "start"],
               "session_hour": ["hour"], "error_groups": ["error_hash"], "totals": [],
               "usage_rollup": ["level", "start", "category", "name", "source", "version", "os", "python"],
               "name_hist": ["level", "start", "category", "name"],
               "error_rollup": ["level", "start", "error_hash", "error_code", "category", "name"],
               "upload_hour": ["hour"]}
    for table, keys in natural.items():
        if kind == "sqlite":
            info = sqlite_sink._conn().execute(f"PRAGMA table_info({table})").fetchall()
            primary = [row[1] for row in sorted(info, key=lambda r: r[5]) if row[5]]
        else:
            with mysql_sink._read() as cur:
                cur.execute("SELECT column_name FROM information_schema.key_column_usage "
                            "WHERE table_schema = ? AND table_name = ? AND constraint_name = 'PRIMARY' "
                            "ORDER BY ordinal_position",
                            (mysql_sink.database, table))
                primary = [row[0] for row in cur.fetchall()]
        assert primary == [*keys, "shard"], table
