"""The raw-driver baseline for the ingest bench: the same event rows inserted
into the same schema (created by our sink) in one transaction, with nothing
else — no HTTP, no validation, no rollups.

    raw_insert_rows(url, rows) -> seconds
"""

from __future__ import annotations

import sqlite3
import time
from urllib.parse import unquote, urlsplit

from branchpy_telemetry.backend.sinks.registry import open_sink
from branchpy_telemetry.backend.sinks.rollups import EVENT_COLUMNS

COLUMNS = ", ".join(EVENT_COLUMNS)
MYSQL_BATCH = 5000  # rows per executemany (stays far below max_allowed_packet)


def create_schema(url: str) -> None:
    """Let the sink create its schema (tables + indexes), then leave it empty."""
    sink = open_sink(url)
    try:
        sink.migrate()
    finally:
        sink.close()


def raw_insert_rows(url: str, rows: list[tuple]) -> float:
    create_schema(url)
    if url.startswith("sqlite:///"):
        return _sqlite(url[len("sqlite:///"):], rows)
    if url.startswith("mysql://"):
        return _mysql(url, rows)
    raise ValueError(f"no baseline for {url!r}")


def _sqlite(path: str, rows: list[tuple]) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # the sink's own connection settings, so only the work differs
        for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "cache_size = -65536"):
            conn.execute(f"PRAGMA {pragma}")
        sql = f"INSERT INTO events ({COLUMNS}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        conn.close()


def _mysql(url: str, rows: list[tuple]) -> float:
    import pymysql

    parts = urlsplit(url)
    conn = pymysql.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
                           user=unquote(parts.username or "root"), password=unquote(parts.password or ""),
                           database=unquote(parts.path.lstrip("/")), charset="utf8mb4", autocommit=False)
    try:
        sql = f"INSERT INTO events ({COLUMNS}) VALUES ({', '.join(['%s'] * len(EVENT_COLUMNS))})"
        started = time.perf_counter()
        with conn.cursor() as cur:
            for i in range(0, len(rows), MYSQL_BATCH):
                cur.executemany(sql, rows[i:i + MYSQL_BATCH])
        conn.commit()
        return time.perf_counter() - started
    finally:
        conn.close()
