"""A composite secondary catches up: what it missed while down (or past its in-flight
bound) is written to it once it is back, also after a restart; until then /health
reports it behind, with the count; a frozen secondary never slows the primary.

Secondaries fail for real: a SQLite file locked by another connection, a private
mariadbd frozen with SIGSTOP or stopped (tests/backend/own_mariadb.py).
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from datetime import UTC, datetime

import msgspec
import pytest
import requests

from branchpy_telemetry.backend.sinks.composite import CompositeSink
from branchpy_telemetry.backend.sinks.composite_backlog import SecondaryBacklog
from branchpy_telemetry.backend.sinks.mysql import MySQLTelemetrySink
from branchpy_telemetry.backend.sinks.sqlite import LocalSQLiteSink

from ..polling import wait_until
from .conftest import make_package
from .live_backend import clean_env, start_backend
from .own_mariadb import OwnMariaDB

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def store(sink, package):
    return sink.store_package(package, receipt="sha256:r", body_bytes=10, received_at=NOW)


def backlog_rows(path) -> dict[str, int]:
    backlog = SecondaryBacklog(path)
    try:
        return backlog.members()
    finally:
        backlog.close()


class LockedSQLite:
    """Another connection holding the write lock: the secondary's writes fail ("database is locked")."""

    def __init__(self, path):
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


def test_packages_missed_while_down_are_delivered_once_it_is_back(tmp_path):
    secondary = LocalSQLiteSink(tmp_path / "s.db", busy_timeout_s=0.05)
    sink = CompositeSink([LocalSQLiteSink(tmp_path / "p.db"), secondary], retry_cap_s=0.2)
    lock = LockedSQLite(tmp_path / "s.db")
    try:
        for seed in range(12):
            assert store(sink, make_package(25, seed=seed)).accepted_events == 25
        wait_until(lambda: sink.member_health()["secondary1:sqlite"].behind == 12, what="behind 12")
        health = sink.member_health()["secondary1:sqlite"]
        assert (health.ok, health.state, health.behind) == (False, "down", 12)
        lock.release()
        wait_until(lambda: sink.member_health()["secondary1:sqlite"].state == "ok", what="caught up")
        assert sink.member_health()["secondary1:sqlite"].behind == 0
        assert secondary.stats().events == sink.stats().events == 300
        assert secondary.stats().packages == 12
    finally:
        sink.close()


def test_the_backlog_survives_a_restart_and_is_delivered_after_it(tmp_path):
    backlog_path = tmp_path / "backlog.db"
    locked_secondary = LocalSQLiteSink(tmp_path / "s.db", busy_timeout_s=0.05)
    first = CompositeSink([LocalSQLiteSink(tmp_path / "p.db"), locked_secondary],
                          backlog=SecondaryBacklog(backlog_path), retry_cap_s=0.2)
    lock = LockedSQLite(tmp_path / "s.db")
    for seed in range(5):
        store(first, make_package(10, seed=seed))
    wait_until(lambda: first.member_health()["secondary1:sqlite"].behind == 5, what="behind 5")
    first.close()  # the backend stops with the secondary still behind
    lock.release()
    assert backlog_rows(backlog_path) == {f"sqlite:{(tmp_path / 's.db').resolve()}": 5}
    secondary = LocalSQLiteSink(tmp_path / "s.db")
    second = CompositeSink([LocalSQLiteSink(tmp_path / "p.db"), secondary],
                           backlog=SecondaryBacklog(backlog_path))
    try:
        assert second.flush(30)
        assert secondary.stats().packages == 5 and secondary.stats().events == 50
        assert second.member_health()["secondary1:sqlite"].state == "ok"
    finally:
        second.close()


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory):
    server = OwnMariaDB(tmp_path_factory.mktemp("own-mariadb")).start()
    yield server
    server.close()


@pytest.mark.mysql
def test_a_frozen_secondary_never_slows_the_primarys_answer(tmp_path, mariadb):
    url = mariadb.url("bp_frozen_secondary", read_timeout=3, health_timeout=1)
    secondary = MySQLTelemetrySink.from_url(url)
    sink = CompositeSink([LocalSQLiteSink(tmp_path / "p.db"), secondary], probe_timeout=1.0, retry_cap_s=1.0)
    alone = LocalSQLiteSink(tmp_path / "alone.db")
    try:
        packages = [make_package(200, seed=100 + i) for i in range(30)]
        baseline = []
        for package in packages[:10]:
            started = time.monotonic()
            store(alone, package)
            baseline.append(time.monotonic() - started)
        mariadb.freeze()
        try:
            frozen = []
            for package in packages:
                started = time.monotonic()
                assert store(sink, package).accepted_events == 200
                frozen.append(time.monotonic() - started)
            started = time.monotonic()
            health = sink.member_health()["secondary1:mysql"]
            assert time.monotonic() - started < 2.0
            assert health.ok is False and health.behind >= 14  # all but the live writes still young
        finally:
            mariadb.thaw()
        # the primary's answer with a frozen secondary costs what it costs alone, plus the backlog row
        assert max(frozen) < 0.5, frozen
        assert statistics.median(frozen) < statistics.median(baseline) + 0.1, (frozen, baseline)
        wait_until(lambda: sink.member_health()["secondary1:mysql"].state == "ok", timeout=60,
                   what="caught up after thaw")
        assert secondary.stats().packages == 30 and secondary.stats().events == 6000
    finally:
        sink.close()
        alone.close()


@pytest.mark.mysql
def test_serve_reports_a_stopped_secondary_behind_and_catches_up_after_a_restart(tmp_path, mariadb):
    mysql_url = mariadb.url("bp_serve_secondary", connect_timeout=1)
    primary = f"sqlite:///{tmp_path / 'primary.db'}"
    backlog = tmp_path / "backlog.db"
    env = clean_env(tmp_path / "home", secondary_backlog=str(backlog))
    server = start_backend(tmp_path / "run1", env, [primary, mysql_url])
    headers = {**server.headers("ingest"), "Content-Type": "application/json"}

    def upload(srv, seed: int) -> int:
        body = msgspec.json.encode(make_package(20, seed=seed))
        return requests.post(srv.api + "/upload", data=body, headers=headers, timeout=30).status_code

    def secondary_state():
        return requests.get(server.api + "/health", timeout=10).json()["sinks"]["secondary1:mysql"]

    try:
        assert upload(server, 1) == 201
        wait_until(lambda: not backlog_rows(backlog), what="package 1 on the secondary")
        mariadb.stop()
        assert [upload(server, seed) for seed in range(2, 8)] == [201] * 6  # the primary decides
        wait_until(lambda: secondary_state().get("behind") == 6,
                   what=lambda: f"behind 6 ({secondary_state()})")
        assert secondary_state() == {"ok": False, "kind": "mysql", "state": "down", "behind": 6}
        assert requests.get(server.api + "/health", timeout=10).json()["status"] == "degraded"
    finally:
        server.stop()
    mariadb.start()
    restarted = start_backend(tmp_path / "run2", env, [primary, mysql_url])
    try:
        def health():
            return requests.get(restarted.api + "/health", timeout=10).json()

        wait_until(lambda: health()["status"] == "ok", timeout=60, what="caught up after restart")
        assert health()["sinks"]["secondary1:mysql"] == {"ok": True, "kind": "mysql", "state": "ok"}
    finally:
        restarted.stop()
    check = MySQLTelemetrySink.from_url(mysql_url)
    try:
        assert (check.stats().packages, check.stats().events) == (7, 140)
    finally:
        check.close()
