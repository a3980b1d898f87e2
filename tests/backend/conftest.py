"""Backend fixtures: a package factory and one fixture per sink.

`make_package(n_events, …)` builds a valid TelemetryPackage from the client's
schema Structs (deterministic for a given seed); the HTTP tests reuse it.

MySQL: the real MariaDB at BRANCHPY_TEST_MYSQL_URL (default
mysql://root@127.0.0.1:3306/). Every test run gets its own database
`bpt_<hex>`, dropped afterwards. An unreachable server FAILS the MySQL tests
(never skips): start it with `sudo service mariadb start`. Tests that use these fixtures are
marked `mysql` by themselves (tests/service_markers.py); deselect them with `-m "not mysql"`.
"""

from __future__ import annotations

import contextlib
import os
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from branchpy_telemetry.client.contracts.schema import (
    SCHEMA_VERSION,
    ErrorSample,
    Platform,
    SanitizedEvent,
    Summary,
    TelemetryPackage,
    UsageStatistics,
)
from branchpy_telemetry.client.contracts.timewindow import format_ts

from ..service_markers import require_service, sink_kind_params

BASE_TS = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
# (category, name, attrs maker): events the bundled catalog declares, with declared attrs, so that
# what a server stores equals what was sent (the tests compare against a reference sink)
EVENT_TYPES = (
    ("command", "analyze", lambda r: {"files": r.randrange(100), "flag_json": r.random() < 0.5}),
    ("command", "lint", lambda r: {"files": r.randrange(100), "flag_json": r.random() < 0.5}),
    ("command", "graph", lambda r: {"files": r.randrange(100), "flag_json": r.random() < 0.5}),
    ("command", "export", lambda r: {"files": r.randrange(100), "flag_json": r.random() < 0.5}),
    ("feature", "open-panel", lambda r: {"panel": r.choice(("flow", "graph"))}),
    ("feature", "search", lambda r: {"results": r.randrange(100), "flag_json": r.random() < 0.5}),
    ("performance", "parse", lambda r: {"files": r.randrange(100), "cached": r.random() < 0.5}),
    ("error", "load", lambda r: {"stage": r.choice(("read", "parse"))}),
)
NAMES = tuple(name for _, name, _ in EVENT_TYPES)
STATUSES = ("ok", "ok", "ok", "error", "cancelled")
MYSQL_URL_ENV = "BRANCHPY_TEST_MYSQL_URL"
DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306/"


def event_id_for(seed: int, i: int) -> str:
    return str(uuid.UUID(int=((seed & 0xFFFFFFFF) << 64) | i))


def session_id_for(seed: int, n: int) -> str:
    """A session id in the emitter's form (32 hex), the n-th of a seed's stream."""
    return f"{seed & 0xFFFFFFFF:08x}{n:024x}"


def correlation_id_for(seed: int, i: int) -> str:
    return f"c0{seed & 0xFFFFFFFF:014x}{i:016x}"


def governance_id_for(n: int) -> str:
    return str(uuid.UUID(int=(0xA << 124) | n))


def make_event(i: int, *, seed: int = 0, start: datetime = BASE_TS, step: timedelta = timedelta(minutes=1),
               sessions: int = 4, **overrides) -> SanitizedEvent:
    """Event number `i` of a deterministic stream: ts = start + i*step."""
    rnd = random.Random(seed * 1_000_003 + i)
    status = rnd.choice(STATUSES)
    category, name, attrs = EVENT_TYPES[rnd.choice((0, 0, 1, 1, 2, 3, 4, 5, 6, 7))]
    fields = dict(
        event_id=event_id_for(seed, i), ts=format_ts(start + i * step),
        category=category, source=rnd.choice(("cli", "extension", "daemon")), name=name,
        duration_ms=round(rnd.lognormvariate(4, 1.2), 3) if rnd.random() < 0.9 else None,
        status=status, session_id=session_id_for(seed, rnd.randrange(sessions)),
        correlation_id=correlation_id_for(seed, i), attrs=attrs(rnd),
    )
    if status == "error":
        code = rnd.randrange(3)
        fields.update(error_code=f"BP-E100{code}", error_hash=f"sha256:{code:064x}")
    fields.update(overrides)
    return SanitizedEvent(**fields)


def make_package(n_events: int = 10, *, seed: int = 0, start: datetime = BASE_TS,
                 step: timedelta = timedelta(minutes=1), sessions: int = 4, package_id: str | None = None,
                 governance_id: str = governance_id_for(1), events: list[SanitizedEvent] | None = None,
                 branchpy_version: str = "1.4.0", os_name: str = "linux") -> TelemetryPackage:
    """A valid package of `n_events` deterministic events (or exactly `events`)."""
    if events is None:
        events = [make_event(i, seed=seed, start=start, step=step, sessions=sessions)
                  for i in range(n_events)]
    usage = UsageStatistics()
    errors: dict[str, ErrorSample] = {}
    for ev in events:
        for bucket, key in ((usage.categories, ev.category), (usage.sources, ev.source),
                            (usage.statuses, ev.status or "none")):
            bucket[key] = bucket.get(key, 0) + 1
        if ev.error_hash:
            old = errors.get(ev.error_hash)
            errors[ev.error_hash] = ErrorSample(
                error_hash=ev.error_hash, error_code=ev.error_code, name=ev.name,
                count=(old.count if old else 0) + 1, first_seen=old.first_seen if old else ev.ts,
                last_seen=ev.ts)
    ts = sorted(ev.ts for ev in events)
    return TelemetryPackage(
        schema_version=SCHEMA_VERSION, package_id=package_id or str(uuid.uuid4()),
        export_timestamp=format_ts(datetime.now(UTC)), branchpy_version=branchpy_version,
        platform=Platform(os=os_name, arch="x86_64", python="3.11.2"),
        summary=Summary(events=events, event_count=len(events), first_event_ts=ts[0] if ts else None,
                        last_event_ts=ts[-1] if ts else None),
        performance_metrics={}, usage_statistics=usage, errors=list(errors.values()),
        governance_id=governance_id, correlation_ids=sorted({ev.correlation_id for ev in events
                                                             if ev.correlation_id}))


# ---- MySQL ------------------------------------------------------------------

def mysql_server_url() -> str:
    return os.environ.get(MYSQL_URL_ENV, DEFAULT_MYSQL_URL)


def _server_connect():
    from urllib.parse import unquote, urlsplit

    import pymysql

    require_service("mysql")
    parts = urlsplit(mysql_server_url())
    try:
        return pymysql.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
                               user=unquote(parts.username or "root"), password=unquote(parts.password or ""),
                               charset="utf8mb4", autocommit=True, connect_timeout=5)
    except pymysql.err.OperationalError as exc:
        pytest.fail(f"MySQL/MariaDB server unreachable at {mysql_server_url()} ({exc}). These tests never "
                    f"skip: start it with `sudo service mariadb start` (or set {MYSQL_URL_ENV}=mysql://"
                    "user:pass@host:port/).", pytrace=False)


def _database_url(db: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(mysql_server_url())
    return parts._replace(path=f"/{db}").geturl()


def database_connection(url: str):
    """A raw autocommit PyMySQL connection to the database of a mysql:// URL (setting up test states)."""
    from urllib.parse import unquote, urlsplit

    import pymysql

    require_service("mysql")
    parts = urlsplit(url)
    return pymysql.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
                           user=unquote(parts.username or "root"), password=unquote(parts.password or ""),
                           database=parts.path.strip("/"), charset="utf8mb4", autocommit=True)


@contextlib.contextmanager
def fresh_mysql_database():
    """(url, drop) of a new database `bpt_<hex>` on the test server; dropped on exit."""
    name = f"bpt_{uuid.uuid4().hex[:12]}"
    conn = _server_connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")

    def drop() -> None:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")

    try:
        yield _database_url(name), drop
    finally:
        drop()
        conn.close()


@pytest.fixture
def mysql_database():
    """(url, drop) of a fresh database for this test; `drop()` drops it early (failure tests)."""
    with fresh_mysql_database() as db:
        yield db


@pytest.fixture
def mysql_admin():
    """An autocommit connection to the test server with no database selected (create, drop, kill)."""
    conn = _server_connect()
    yield conn
    conn.close()


@pytest.fixture
def mysql_url(mysql_database) -> str:
    return mysql_database[0]


# ---- sinks ------------------------------------------------------------------

SINK_KINDS = ("memory", "sqlite", "mysql", "composite")


@contextlib.contextmanager
def open_test_sink(kind: str, directory):
    """A fresh sink of `kind` under `directory` (MySQL: its own database, dropped on exit).
    The composite is SQLite primary + MySQL secondary; `.drop_secondary()` drops the MySQL
    database for real."""
    from branchpy_telemetry.backend.sinks.composite import CompositeSink
    from branchpy_telemetry.backend.sinks.memory import MemorySink
    from branchpy_telemetry.backend.sinks.mysql import MySQLTelemetrySink
    from branchpy_telemetry.backend.sinks.sqlite import LocalSQLiteSink

    with contextlib.ExitStack() as stack:
        if kind == "memory":
            sink = MemorySink()
        elif kind == "sqlite":
            sink = LocalSQLiteSink(directory / "events.db")
        elif kind == "mysql":
            url, _ = stack.enter_context(fresh_mysql_database())
            sink = MySQLTelemetrySink.from_url(url)
        elif kind == "composite":
            url, drop = stack.enter_context(fresh_mysql_database())
            sink = CompositeSink([LocalSQLiteSink(directory / "primary.db"),
                                  MySQLTelemetrySink.from_url(url)])
            sink.drop_secondary = drop
        else:
            raise ValueError(kind)
        stack.callback(sink.close)  # closed before its database is dropped
        yield sink


@pytest.fixture
def memory_sink(tmp_path):
    with open_test_sink("memory", tmp_path) as sink:
        yield sink


@pytest.fixture
def sqlite_sink(tmp_path):
    with open_test_sink("sqlite", tmp_path) as sink:
        yield sink


@pytest.fixture
def mysql_sink(tmp_path):
    with open_test_sink("mysql", tmp_path) as sink:
        yield sink


@pytest.fixture
def composite_sink(tmp_path):
    with open_test_sink("composite", tmp_path) as sink:
        yield sink


@pytest.fixture(params=sink_kind_params(SINK_KINDS))
def any_sink(request):
    """Each sink in turn (the contract suite runs once per kind)."""
    return request.getfixturevalue(f"{request.param}_sink")
