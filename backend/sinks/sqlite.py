"""LocalSQLiteSink: the default sink, one SQLite file (DESIGN §10).

Database layer: the raw `sqlite3` driver, no ORM or SQLAlchemy Core. Measured
on this machine (issue 3): SQLAlchemy Core inserts into indexed SQLite took
1.3-1.5x the raw driver's time, and ingest is the hot path; our statements are
few, fixed and shared with MySQL through `sql_store`/`sql_base`, so a query
builder buys little.

Settings: WAL (readers never block the writer), busy_timeout 10 s,
`synchronous=NORMAL` (durable at checkpoints; WAL keeps the file
consistent), a 64 MiB page cache (`cache_size=-65536`, +50 % insert rate
measured), one connection per thread, writes in `BEGIN IMMEDIATE`
transactions with `executemany`.

The schema is versioned (`schema_version`) and created on open by running
the ordered MIGRATIONS. `events` is a WITHOUT ROWID table keyed by event_id,
so every index also holds event_id (the listing's tie-break) and has exactly
5 indexes, chosen for the `/events` filters:

  ix_events_ts                (ts_us)                 unfiltered listing, from/to, purge
  ix_events_category_ts       (category, ts_us)       category=
  ix_events_name_ts           (name, ts_us)           name=
  ix_events_session_ts        (session_id, ts_us)     session_id=
  ix_events_source_status_ts  (source, status, ts_us) source=, source+status; status= alone
                                                      runs as `source IN (cli, extension, daemon)`
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

from . import sql_store as S
from .base import SinkError, SinkHealth
from .sql_base import SqlSink, TracingCursor

SCHEMA_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"

MIGRATIONS: list[list[str]] = [
    [  # 1: initial schema
        """CREATE TABLE packages (package_id TEXT PRIMARY KEY, receipt TEXT NOT NULL,
            received_us INTEGER NOT NULL, governance_id TEXT NOT NULL, body_bytes INTEGER NOT NULL,
            event_count INTEGER NOT NULL, accepted_events INTEGER NOT NULL, branchpy_version TEXT NOT NULL,
            platform_os TEXT NOT NULL)""",
        """CREATE TABLE events (event_id TEXT PRIMARY KEY, package_id TEXT NOT NULL, ts TEXT NOT NULL,
            ts_us INTEGER NOT NULL, category TEXT NOT NULL, source TEXT NOT NULL, name TEXT NOT NULL,
            duration_ms REAL, status TEXT, session_id TEXT, correlation_id TEXT, error_code TEXT,
            error_hash TEXT, attrs TEXT NOT NULL, governance_id TEXT NOT NULL) WITHOUT ROWID""",
        "CREATE INDEX ix_events_ts ON events (ts_us)",
        "CREATE INDEX ix_events_category_ts ON events (category, ts_us)",
        "CREATE INDEX ix_events_name_ts ON events (name, ts_us)",
        "CREATE INDEX ix_events_session_ts ON events (session_id, ts_us)",
        "CREATE INDEX ix_events_source_status_ts ON events (source, status, ts_us)",
        """CREATE TABLE rollup_hour (hour INTEGER PRIMARY KEY, events INTEGER NOT NULL,
            errors INTEGER NOT NULL,
            with_status INTEGER NOT NULL, dur_n INTEGER NOT NULL, dur_sum REAL NOT NULL)""",
        """CREATE TABLE rollup_dim (dim TEXT NOT NULL, hour INTEGER NOT NULL, dkey TEXT NOT NULL,
            events INTEGER NOT NULL, PRIMARY KEY (dim, hour, dkey)) WITHOUT ROWID""",
        """CREATE TABLE hist (level INTEGER NOT NULL, start INTEGER NOT NULL, cum BLOB NOT NULL,
            PRIMARY KEY (level, start))""",
        """CREATE TABLE session_hour (hour INTEGER PRIMARY KEY, sessions INTEGER NOT NULL,
            duration_us INTEGER NOT NULL, events INTEGER NOT NULL)""",
        """CREATE TABLE sessions (session_id TEXT PRIMARY KEY, first_us INTEGER NOT NULL,
            last_us INTEGER NOT NULL, events INTEGER NOT NULL, errors INTEGER NOT NULL) WITHOUT ROWID""",
        "CREATE INDEX ix_sessions_first ON sessions (first_us)",
        "CREATE INDEX ix_sessions_last ON sessions (last_us)",
        """CREATE TABLE error_groups (error_hash TEXT PRIMARY KEY, error_code TEXT, name TEXT,
            count INTEGER NOT NULL, last_us INTEGER NOT NULL) WITHOUT ROWID""",
        "CREATE INDEX ix_error_groups_last ON error_groups (last_us)",
        "CREATE TABLE installs (governance_id TEXT PRIMARY KEY, first_us INTEGER NOT NULL) WITHOUT ROWID",
        """CREATE TABLE totals (id INTEGER PRIMARY KEY CHECK (id = 1), events INTEGER NOT NULL,
            packages INTEGER NOT NULL, errors INTEGER NOT NULL, sessions INTEGER NOT NULL,
            installs INTEGER NOT NULL, last_upload_us INTEGER NOT NULL)""",
        "INSERT INTO totals VALUES (1, 0, 0, 0, 0, 0, 0)",
        """CREATE TABLE api_keys (key_id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE, scope TEXT NOT NULL,
            label TEXT, created_at TEXT NOT NULL, revoked_at TEXT)""",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)


class _SQLiteDialect(S.Dialect):
    # ON CONFLICT names the key: a NOT NULL or CHECK failure still raises (OR IGNORE would skip it).
    event_insert_new = S.EVENT_INSERT + " ON CONFLICT (event_id) DO NOTHING"

    def upsert_add(self, table, keys, adds):
        cols = [*keys, *adds]
        sets = ", ".join(f"{c} = {c} + excluded.{c}" for c in adds)
        return (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({S.qmarks(len(cols))}) "
                f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}")

    def upsert_replace(self, table, keys, cols):
        names = [*keys, *cols]
        sets = ", ".join(f"{c} = excluded.{c}" for c in cols)
        return (f"INSERT INTO {table} ({', '.join(names)}) VALUES ({S.qmarks(len(names))}) "
                f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}")


def _same(sql: str) -> str:
    return sql


class LocalSQLiteSink(SqlSink):
    kind = "sqlite"
    dialect = _SQLiteDialect()
    status_via_source = True
    driver_errors = (sqlite3.Error,)

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 10.0):
        super().__init__()
        self.path = Path(path)
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"cannot create the directory for {self.path}: {exc}") from exc
        self.migrate()

    @classmethod
    def from_url(cls, url: str) -> LocalSQLiteSink:
        """`sqlite:///relative/path.db` (relative to the CWD) or `sqlite:////absolute/path.db`."""
        prefix = "sqlite:///"
        if not url.startswith(prefix) or len(url) == len(prefix):
            raise SinkError(f"bad SQLite URL {url!r}: use sqlite:///relative/path.db or sqlite:////abs/path.db")
        path = url[len(prefix):]
        if path == ":memory:":  # one private database per connection (= per thread): not a store
            raise SinkError("sqlite:///:memory: is not supported (one database per thread); use memory://")
        return cls(Path(path))

    # ---- connections ----------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise SinkError(f"sqlite sink {self.path} is closed")
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA cache_size = -65536")
            conn.execute("PRAGMA temp_store = MEMORY")
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    @contextlib.contextmanager
    def _txn(self):
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield TracingCursor(conn.cursor(), _same, None)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    @contextlib.contextmanager
    def _read(self):
        conn = self._conn()
        cur = conn.cursor()
        try:
            yield TracingCursor(cur, _same, self._trace)
        finally:
            cur.close()

    def explain(self, sql: str, args: tuple) -> list[str]:
        """EXPLAIN QUERY PLAN details of one statement (tests)."""
        return [row[3] for row in self._conn().execute(f"EXPLAIN QUERY PLAN {sql}", args)]

    # ---- schema -----------------------------------------------------------------
    def migrate(self) -> int:
        with self.translate_errors("migrate"):
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(SCHEMA_VERSION_TABLE)
                row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
                current = row[0] or 0
                for version in range(current + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS[version - 1]:
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        if current > SCHEMA_VERSION:
            raise SinkError(f"{self.path} has schema version {current}, newer than this code's "
                            f"{SCHEMA_VERSION}: upgrade branchpy-telemetry")
        return SCHEMA_VERSION

    def health(self) -> SinkHealth:
        try:
            with self.translate_errors("health"):
                self._conn().execute("SELECT version FROM schema_version").fetchall()
        except SinkError as exc:
            return SinkHealth(ok=False, kind=self.kind, detail=str(exc))
        return SinkHealth(ok=True, kind=self.kind, detail=str(self.path))

    def close(self) -> None:
        self._closed = True
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()
