"""MySQLTelemetrySink: production storage on MySQL/MariaDB.

Driver: PyMySQL, raw (no SQLAlchemy). Measured here on MariaDB 10.11 with 5
indexes, before choosing: PyMySQL `executemany` 36 k rows/s, 30 k through
SQLAlchemy Core (1.17x slower). mysql-connector-python's C extension did
41 k rows/s, but its 26.10 release silently falls back to pure Python on
Debian 12 when `ssl` or `hashlib` is imported first, and its `executemany`
sends all rows as one statement, which fails above the default 16 MB
`max_allowed_packet`. PyMySQL is pure Python (nothing to build), and its
`executemany` rewrites `INSERT ... VALUES (...)` into multi-row INSERTs split
under `max_stmt_length` (1 MB) — tests check that this fast path runs
(`Com_insert` grows by statements, not rows).

Connections: a small bounded pool (mysql_pool.py). Every socket operation
has a deadline: `connect_timeout` (5 s), `read_timeout` and `write_timeout`
(10 s), so a frozen server turns into SinkError (503) instead of a hang, and
the pool then fails fast for a few seconds. The session's
`innodb_lock_wait_timeout` (5 s) stays below the read timeout: a lock wait
ends on the server (a retryable error) before the client gives up on the
socket, so an abandoned transaction never sits holding locks. Migrations
get `migrate_timeout` (300 s) per statement. `health()` opens its own
connection with `health_timeout` (2 s) on everything, outside the pool, so
it answers while the pool's connections are stuck. All of these are URL
query parameters (`?read_timeout=30`). Sessions run READ COMMITTED with
strict SQL mode, utf8mb4. Statements are parameterized only (`?` in shared
SQL becomes `%s`).

Schema: versioned, `migrate()` creates the database if needed and applies
the ordered migrations (mysql_schema.py documents the 15 indexes). Opening
a sink migrates unless `migrate=False`; with `migrate="lazy"` it connects
and migrates on first use instead (a secondary whose server is down when the
backend starts must not stop it from starting).
"""

from __future__ import annotations

import contextlib
import functools
from urllib.parse import parse_qs, unquote, urlsplit

import pymysql

from branchpy_telemetry.backend.sinks import mysql_schema as M
from branchpy_telemetry.backend.sinks import sql_store as S
from branchpy_telemetry.backend.sinks.backfill import BACKFILL_VERSION, backfill_usage
from branchpy_telemetry.backend.sinks.base import SinkError, SinkHealth
from branchpy_telemetry.backend.sinks.mysql_pool import ConnectionPool, close_quietly, is_timeout
from branchpy_telemetry.backend.sinks.registry import redact_url
from branchpy_telemetry.backend.sinks.sql_base import SqlSink
from branchpy_telemetry.backend.sinks.sql_cursor import TracingCursor

# Server errors after which the whole write transaction runs again (write_retry.py names the causes).
_RETRY_CAUSES = {1213: "conflict", 1205: "lock_wait_timeout", 1062: "duplicate_key_race",
                 1047: "node_not_ready"}
# URL query parameters -> their type (constructor arguments of the same name)
URL_OPTIONS = {"pool_size": int, "pool_timeout": float, "connect_timeout": float, "read_timeout": float,
               "write_timeout": float, "lock_wait_timeout": int, "health_timeout": float,
               "migrate_timeout": float}  # duplicate key (lost race), deadlock, lock wait timeout


@functools.lru_cache(maxsize=512)
def to_pyformat(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class _MySQLDialect(S.Dialect):
    lock_suffix = " FOR UPDATE"
    # events has one unique key, event_id: only that conflict is skipped. Without
    # CLIENT_FOUND_ROWS (PyMySQL's default) an unchanged duplicate counts 0 affected rows.
    event_insert_new = S.EVENT_INSERT + " ON DUPLICATE KEY UPDATE event_id = event_id"

    def upsert_add(self, table, keys, adds, maxes=(), mins=()):
        cols = [*keys, *adds, *maxes, *mins]
        sets = ", ".join([*(f"{c} = {c} + VALUES({c})" for c in adds),
                          *(f"{c} = GREATEST({c}, VALUES({c}))" for c in maxes),
                          *(f"{c} = LEAST({c}, VALUES({c}))" for c in mins)])
        return (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({S.qmarks(len(cols))}) "
                f"ON DUPLICATE KEY UPDATE {sets}")

    def upsert_replace(self, table, keys, cols):
        names = [*keys, *cols]
        sets = ", ".join(f"{c} = VALUES({c})" for c in cols)
        return (f"INSERT INTO {table} ({', '.join(names)}) VALUES ({S.qmarks(len(names))}) "
                f"ON DUPLICATE KEY UPDATE {sets}")


class MySQLTelemetrySink(SqlSink):
    kind = "mysql"
    dialect = _MySQLDialect()
    driver_errors = (pymysql.err.MySQLError,)
    ts_index_hint = " FORCE INDEX (ix_events_ts)"

    def __init__(self, *, host: str, port: int, user: str, password: str, database: str,
                 pool_size: int = 8, pool_timeout: float = 10.0, connect_timeout: float = 5.0,
                 read_timeout: float = 10.0, write_timeout: float = 10.0, lock_wait_timeout: int = 5,
                 health_timeout: float = 2.0, migrate_timeout: float = 300.0,
                 migrate: bool | str = True, url: str | None = None):
        super().__init__()
        if not database:
            raise SinkError("MySQL URL names no database: use mysql://user:pass@host:port/dbname")
        self.database = database
        self.url = redact_url(url or f"mysql://{user}@{host}:{port}/{database}")
        self._params = dict(host=host, port=port, user=user, password=password, charset="utf8mb4",
                            connect_timeout=connect_timeout, read_timeout=read_timeout,
                            write_timeout=write_timeout, autocommit=True)
        self._lock_wait_timeout = max(1, int(lock_wait_timeout))
        self._health_timeout = health_timeout
        self._migrate_timeout = migrate_timeout
        self.pool = ConnectionPool(self._connect, pool_size, pool_timeout)
        self._collation: str | None = None
        self._pending_migrate = migrate == "lazy"
        if migrate is True:
            self.migrate()

    def _ensure_schema(self) -> None:
        if self._pending_migrate:
            self.migrate()
            self._pending_migrate = False

    def _write(self, what, fn, *, retry=True):
        self._ensure_schema()
        return super()._write(what, fn, retry=retry)

    def _query(self, what, fn):
        self._ensure_schema()
        return super()._query(what, fn)

    @classmethod
    def from_url(cls, url: str, **overrides) -> MySQLTelemetrySink:
        """`mysql://user:pass@host:port/db[?pool_size=8&pool_timeout=10&read_timeout=10…]`."""
        try:
            parts = urlsplit(url)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            kwargs = dict(host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
                          user=unquote(parts.username or "root"), password=unquote(parts.password or ""),
                          database=unquote(parts.path.lstrip("/")), url=url)
            for key, conv in URL_OPTIONS.items():
                if key in query:
                    kwargs[key] = conv(query[key])
        except ValueError as exc:
            raise SinkError(f"bad MySQL URL {redact_url(url)!r}: {exc}; "
                            "use mysql://user:pass@host:port/db") from None
        kwargs.update(overrides)
        return cls(**kwargs)

    # ---- connections ------------------------------------------------------------
    def _connect(self, *, with_database: bool = True, timeout: float | None = None):
        """A new session; `timeout` replaces every socket deadline (health probe, migrations)."""
        params = dict(self._params, database=self.database) if with_database else dict(self._params)
        if timeout is not None:
            params.update(connect_timeout=min(timeout, params["connect_timeout"]), read_timeout=timeout,
                          write_timeout=timeout)
        conn = pymysql.connect(**params)
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            cur.execute(f"SET SESSION innodb_lock_wait_timeout = {self._lock_wait_timeout}")
        return conn

    def _retry_cause(self, exc: BaseException) -> str | None:
        code = exc.args[0] if exc.args else None
        return _RETRY_CAUSES.get(code) if isinstance(code, int) else None

    @contextlib.contextmanager
    def _txn(self):
        with self.pool.connection() as conn:
            conn.begin()
            with conn.cursor() as cur:
                yield TracingCursor(cur, to_pyformat, None)
            conn.commit()

    @contextlib.contextmanager
    def _read(self):
        with self.pool.connection() as conn, conn.cursor() as cur:
            yield TracingCursor(cur, to_pyformat, self._trace)

    def explain(self, sql: str, args: tuple) -> list[str]:
        """`table|access type|key` per row of EXPLAIN (tests)."""
        with self._read() as cur:
            cur.execute(f"EXPLAIN {sql}", args)
            return [f"{r[2]}|{r[3]}|{r[5]}" for r in cur.fetchall()]

    # ---- schema -----------------------------------------------------------------
    def migrate(self) -> int:
        with self.translate_errors("migrate"):
            conn = self._connect(with_database=False, timeout=self._migrate_timeout)
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT VERSION()")
                    server = cur.fetchone()[0]
                    collation = "utf8mb4_nopad_bin" if "mariadb" in server.lower() else "utf8mb4_0900_bin"
                    name = self.database.replace("`", "``")
                    cur.execute("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                                (self.database,))
                    if not cur.fetchone()[0]:
                        self._schema_changes.append(f"created database `{self.database}` (it did not exist)")
                    cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 "
                                f"COLLATE {collation}")
                    cur.execute(f"USE `{name}`")
                    cur.execute(M.SCHEMA_VERSION_TABLE)
                    cur.execute("SELECT GET_LOCK(%s, 30)", (f"branchpy_migrate_{self.database}",))
                    cur.execute("SELECT MAX(version) FROM schema_version")
                    current = cur.fetchone()[0] or 0
                    if current > M.SCHEMA_VERSION:
                        raise SinkError(f"{self.url} has schema version {current}, newer than this code's "
                                        f"{M.SCHEMA_VERSION}: upgrade branchpy-telemetry")
                    for version in range(current + 1, M.SCHEMA_VERSION + 1):
                        for statement in M.migration_statements(version, collation):
                            cur.execute(statement)  # DDL commits implicitly in MySQL
                        if version == BACKFILL_VERSION:
                            backfill_usage(TracingCursor(cur, to_pyformat, None), self.dialect)
                        cur.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
                    if current < M.SCHEMA_VERSION:
                        self._schema_changes.append(f"schema version {current} -> {M.SCHEMA_VERSION}")
                    cur.execute("SELECT RELEASE_LOCK(%s)", (f"branchpy_migrate_{self.database}",))
            finally:
                close_quietly(conn)
        return M.SCHEMA_VERSION

    def health(self) -> SinkHealth:
        """One query on a connection of its own, every socket step bounded by `health_timeout`:
        the answer comes in that time even when the pool's connections are stuck."""
        try:
            version = self._probe_schema_version()
            if self._pending_migrate:  # a secondary that was down at start: the server answers now
                self._ensure_schema()
                version = self._probe_schema_version()
        except SinkError as exc:
            return SinkHealth(ok=False, kind=self.kind, detail=str(exc))
        if version != M.SCHEMA_VERSION:
            return SinkHealth(ok=False, kind=self.kind, state="needs_migration",
                              detail=f"{self.url}: schema version {version}, expected {M.SCHEMA_VERSION}: "
                                     "run `branchpy-telemetry-backend migrate`")
        return SinkHealth(ok=True, kind=self.kind, detail=self.url)

    def _probe_schema_version(self) -> int | None:
        """The schema version (None before the first migration), over a connection of its own."""
        with self.translate_errors("health"):
            try:
                conn = self._connect(with_database=not self._pending_migrate, timeout=self._health_timeout)
                try:
                    with conn.cursor() as cur:
                        cur.execute("SELECT 1" if self._pending_migrate else
                                    "SELECT MAX(version) FROM schema_version")
                        version = None if self._pending_migrate else cur.fetchone()[0]
                finally:
                    close_quietly(conn)
            except pymysql.err.MySQLError as exc:
                if is_timeout(exc):
                    self.pool.mark_unresponsive()
                raise
        self.pool.mark_responsive()
        return version

    def close(self) -> None:
        self.pool.close()
