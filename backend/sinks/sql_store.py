"""The write path shared by the SQL sinks: one package in one transaction.

Every statement is parameterized (`?` placeholders; the MySQL cursor turns
them into `%s`); table and column names are constants of this module.
Concurrency: SQLite serializes writers (BEGIN IMMEDIATE). On MySQL two
uploads may race on a new event, session or install: the loser hits a
duplicate key, its transaction is rolled back and retried by the caller
(write_retry.py), and then sees the winner's rows. Aggregates are written
to the package's shard only (shards.py), so uploads of different shards
share no row; rows are upserted in key order so that concurrent
transactions lock in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from branchpy_telemetry.backend.sinks import histogram
from branchpy_telemetry.backend.sinks import rollups as R
from branchpy_telemetry.backend.sinks import usage as U
from branchpy_telemetry.backend.sinks.base import StoreResult
from branchpy_telemetry.backend.sinks.shards import PURGE_SHARD
from branchpy_telemetry.client.contracts.schema import TelemetryPackage

IN_CHUNK = 500  # ids per `IN (...)` lookup
INSERT_CHUNK = 2000  # rows per executemany call (PyMySQL sends each as one multi-row INSERT)

EVENT_INSERT = (f"INSERT INTO events ({', '.join(R.EVENT_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(R.EVENT_COLUMNS))})")
PACKAGE_INSERT = ("INSERT INTO packages (package_id, receipt, received_us, governance_id, body_bytes, "
                  "event_count, accepted_events, branchpy_version, platform_os, platform_python) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
TOTALS_ADDS = ("events", "packages", "errors", "sessions", "installs")


def chunks(items: Sequence, size: int) -> Iterable[Sequence]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def qmarks(n: int) -> str:
    return ", ".join("?" * n)


class Dialect:
    """What differs between SQLite and MySQL on the write path."""

    lock_suffix = ""  # " FOR UPDATE" where readers must lock rows they will update
    # An event INSERT that skips an event_id already stored (and only that conflict), its
    # rowcount counting only inserted rows; None: look the ids up before inserting.
    event_insert_new: str | None = None

    def upsert_add(self, table: str, keys: Sequence[str], adds: Sequence[str],
                   maxes: Sequence[str] = (), mins: Sequence[str] = ()) -> str:
        """INSERT one row, or add its `adds` columns to the existing row's and keep the
        larger of each `maxes` column and the smaller of each `mins` column."""
        raise NotImplementedError

    def upsert_replace(self, table: str, keys: Sequence[str], cols: Sequence[str]) -> str:
        """INSERT one row, or overwrite `cols` of the existing row. Only for rows read
        under lock first (a batched UPDATE: PyMySQL rewrites it into one statement)."""
        raise NotImplementedError


def store_package_rows(cur, dialect: Dialect, package: TelemetryPackage, rows: list[R.EventRow], *,
                       receipt: str, body_bytes: int, received_at: datetime, shard: int) -> StoreResult:
    """Inside an open transaction; aggregates go to `shard`. A duplicate-key error means a
    concurrent writer won a race: the caller rolls back and retries."""
    pid = package.package_id
    cur.execute("SELECT package_id FROM packages WHERE package_id = ?", (pid,))
    if cur.fetchone():
        return StoreResult(package_id=pid, accepted_events=0, duplicate_events=0, duplicate=True)
    new = insert_new_events(cur, dialect, pid, rows)
    received_us = R.datetime_to_us(received_at)
    cur.execute(PACKAGE_INSERT, (pid, receipt, received_us, package.governance_id, body_bytes,
                                 len(package.summary.events), len(new), package.branchpy_version,
                                 package.platform.os, package.platform.python))
    deltas = R.compute_deltas(new)
    new_sessions = apply_deltas(cur, dialect, deltas, shard)
    usage_store.write_usage(cur, dialect, U.compute_usage(new), U.context_of(package), shard)
    usage_store.insert_error_types(cur, U.error_types(package))
    usage_store.add_upload(cur, dialect, received_us, shard)
    new_install = insert_install(cur, package.governance_id, received_us)
    add_totals(cur, dialect, shard, (deltas.events, 1, deltas.error_events, new_sessions, new_install),
               received_us)
    return StoreResult(package_id=pid, accepted_events=len(new),
                       duplicate_events=len(package.summary.events) - len(new), duplicate=False)


def insert_new_events(cur, dialect: Dialect, package_id: str, rows: list[R.EventRow]) -> list[R.EventRow]:
    """Insert the rows whose event_id is not stored yet; returns those rows (in order).

    With `dialect.event_insert_new` the insert itself skips stored ids and counts what it
    inserted: when that is every row (nearly always) no lookup runs at all; otherwise the rows
    that are ours are the ones now stored under this package_id (a new package: no stored
    event can carry its id). Without it, the stored ids are looked up first."""
    if dialect.event_insert_new is not None:
        inserted = 0
        for chunk in chunks(rows, INSERT_CHUNK):
            cur.executemany(dialect.event_insert_new, chunk)
            inserted += cur.rowcount
        if inserted == len(rows):
            return rows
        ours: set[str] = set()
        for chunk in chunks([r[0] for r in rows], IN_CHUNK):
            cur.execute(f"SELECT event_id FROM events WHERE event_id IN ({qmarks(len(chunk))}) "
                        "AND package_id = ?", (*chunk, package_id))
            ours.update(r[0] for r in cur.fetchall())
        return [r for r in rows if r[0] in ours]
    existing: set[str] = set()
    for chunk in chunks([r[0] for r in rows], IN_CHUNK):
        cur.execute(f"SELECT event_id FROM events WHERE event_id IN ({qmarks(len(chunk))})", tuple(chunk))
        existing.update(r[0] for r in cur.fetchall())
    new = [r for r in rows if r[0] not in existing]
    for chunk in chunks(new, INSERT_CHUNK):
        cur.executemany(EVENT_INSERT, chunk)
    return new


def insert_install(cur, governance_id: str, received_us: int) -> int:
    cur.execute("SELECT governance_id FROM installs WHERE governance_id = ?", (governance_id,))
    if cur.fetchone():
        return 0
    cur.execute("INSERT INTO installs (governance_id, first_us) VALUES (?, ?)", (governance_id, received_us))
    return 1


def add_totals(cur, dialect: Dialect, shard: int, adds: tuple[int, ...], last_upload_us: int) -> None:
    """Add (events, packages, errors, sessions, installs) to one shard of the totals."""
    cur.execute(dialect.upsert_add("totals", ["shard"], TOTALS_ADDS, ["last_upload_us"]),
                (shard, *adds, last_upload_us))


def apply_deltas(cur, dialect: Dialect, d: R.Deltas, shard: int) -> int:
    """Upsert every rollup into `shard`; returns how many sessions are new."""
    upsert_rows(cur, dialect.upsert_add("rollup_hour", ["hour", "shard"],
                                        ["events", "errors", "with_status", "dur_n", "dur_sum"]),
                [(h, shard, *v) for h, v in sorted(d.hours.items())])
    upsert_rows(cur, dialect.upsert_add("rollup_dim", ["dim", "hour", "dkey", "shard"], ["events"]),
                [(*k, shard, n) for k, n in sorted(d.dims.items())])
    _merge_hist(cur, dialect, R.hist_blocks(d.hist), shard)
    new_sessions = _merge_sessions(cur, dialect, d.sessions, shard)
    _merge_errors(cur, dialect, d.errors, shard)
    return new_sessions


def upsert_rows(cur, sql: str, rows: list[tuple]) -> None:
    for chunk in chunks(rows, INSERT_CHUNK):
        cur.executemany(sql, chunk)


def read_locked(cur, dialect: Dialect, table: str, key: str, cols: str, ids: list,
                shard: int | None = None, *, where: str = "", args: tuple = ()) -> dict:
    """The current rows of `ids` (of one shard when given; `where`: more leading conditions, each
    followed by AND), locked for update: {id: [cols...]}."""
    old: dict = {}
    if shard is not None:
        where, args = f"{where}shard = ? AND ", (*args, shard)
    for chunk in chunks(ids, IN_CHUNK):
        cur.execute(f"SELECT {key}, {cols} FROM {table} WHERE {where}{key} IN ({qmarks(len(chunk))})"
                    f"{dialect.lock_suffix}", (*args, *chunk))
        for row in cur.fetchall():
            old[row[0]] = list(row[1:])
    return old


def _merge_sessions(cur, dialect: Dialect, contrib: dict[str, list], shard: int) -> int:
    if not contrib:
        return 0
    ids = sorted(contrib)
    old = read_locked(cur, dialect, "sessions", "session_id", "first_us, last_us, events, errors", ids)
    inserts, updates, hourly = [], [], {}
    for sid in ids:
        prev = old.get(sid)
        merged = R.merge_session(prev, contrib[sid])
        (updates if prev else inserts).append((sid, *merged))
        for hour, dc, ddur, dev in R.session_hourly_deltas(prev, merged):
            cell = hourly.setdefault(hour, [0, 0, 0])
            cell[0] += dc
            cell[1] += ddur
            cell[2] += dev
    upsert_rows(cur, "INSERT INTO sessions (session_id, first_us, last_us, events, errors) "
                     "VALUES (?, ?, ?, ?, ?)", inserts)
    upsert_rows(cur, dialect.upsert_replace("sessions", ["session_id"],
                                            ["first_us", "last_us", "events", "errors"]), updates)
    upsert_rows(cur, dialect.upsert_add("session_hour", ["hour", "shard"],
                                        ["sessions", "duration_us", "events"]),
                [(h, shard, *v) for h, v in sorted(hourly.items())])
    return len(inserts)


def _merge_hist(cur, dialect: Dialect, blocks: dict, shard: int) -> None:
    """Add each block's counts to the shard's cumulative histogram (read under lock, then written)."""
    old: dict[tuple, bytes] = {}
    for level in R.HIST_LEVELS:
        starts = sorted(start for lvl, start in blocks if lvl == level)
        for chunk in chunks(starts, IN_CHUNK):
            cur.execute(f"SELECT start, cum FROM hist WHERE level = ? AND shard = ? AND start IN "
                        f"({qmarks(len(chunk))}){dialect.lock_suffix}", (level, shard, *chunk))
            for start, cum in cur.fetchall():
                old[(level, start)] = bytes(cum)
    inserts, updates = [], []
    for key in sorted(blocks):
        blob = histogram.add_counts(old.get(key), blocks[key])
        (updates if key in old else inserts).append((*key, shard, blob))
    upsert_rows(cur, "INSERT INTO hist (level, start, shard, cum) VALUES (?, ?, ?, ?)", inserts)
    upsert_rows(cur, dialect.upsert_replace("hist", ["level", "start", "shard"], ["cum"]), updates)


ERROR_COLUMNS = ("error_code", "name", "count", "last_us", "last_event_id")


def _merge_errors(cur, dialect: Dialect, contrib: dict[str, list], shard: int) -> None:
    if not contrib:
        return
    ids = sorted(contrib)
    old = read_locked(cur, dialect, "error_groups", "error_hash", ", ".join(ERROR_COLUMNS), ids, shard)
    inserts, updates = [], []
    for h in ids:
        prev = old.get(h)
        merged = R.merge_error(prev, contrib[h])
        (updates if prev else inserts).append((h, shard, *merged))
    upsert_rows(cur, f"INSERT INTO error_groups (error_hash, shard, {', '.join(ERROR_COLUMNS)}) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", inserts)
    upsert_rows(cur, dialect.upsert_replace("error_groups", ["error_hash", "shard"], ERROR_COLUMNS), updates)


# ---- retention ----------------------------------------------------------------

def purge_batch(cur, dialect: Dialect, cut_us: int, batch_size: int) -> int:
    """Delete up to batch_size events older than cut_us (oldest first); keeps totals exact."""
    cur.execute("SELECT event_id, status FROM events WHERE ts_us < ? ORDER BY ts_us "
                f"LIMIT ?{dialect.lock_suffix}", (cut_us, batch_size))
    victims = cur.fetchall()
    for chunk in chunks([v[0] for v in victims], IN_CHUNK):
        cur.execute(f"DELETE FROM events WHERE event_id IN ({qmarks(len(chunk))})", tuple(chunk))
    errors = sum(1 for v in victims if v[1] == "error")
    add_totals(cur, dialect, PURGE_SHARD, (-len(victims), 0, -errors, 0, 0), 0)
    return len(victims)


def purge_aggregates(cur, dialect: Dialect, cut_us: int) -> None:
    """Drop rollup rows wholly older than the cutoff, and sessions/error groups last seen before it.
    A partly purged hour keeps its rollup row (rollups are hour-granular), a partly purged block or
    day its row. What was uploaded when (upload_hour) stays, like the packages."""
    cut_s = cut_us // 1_000_000
    cur.execute("DELETE FROM rollup_hour WHERE hour <= ?", (cut_s - R.HOUR,))
    cur.execute("DELETE FROM rollup_dim WHERE dim = ? AND hour <= ?", ("category", cut_s - R.HOUR))
    cur.execute("DELETE FROM rollup_dim WHERE dim = ? AND hour <= ?", ("source", cut_s - R.HOUR))
    for level in R.HIST_LEVELS:
        for table in ("hist", "usage_rollup", "name_hist", "error_rollup"):
            cur.execute(f"DELETE FROM {table} WHERE level = ? AND start <= ?", (level, cut_s - level))
    cur.execute("DELETE FROM install_days WHERE day <= ?", (cut_s - R.DAY,))
    cur.execute("DELETE FROM session_hour WHERE hour <= ?", (cut_s - R.HOUR,))
    cur.execute("SELECT COUNT(*) FROM sessions WHERE last_us < ?", (cut_us,))
    gone = cur.fetchone()[0]
    cur.execute("DELETE FROM sessions WHERE last_us < ?", (cut_us,))
    add_totals(cur, dialect, PURGE_SHARD, (0, 0, 0, -gone, 0), 0)
    cur.execute("DELETE FROM error_groups WHERE last_us < ?", (cut_us,))


from branchpy_telemetry.backend.sinks import usage_store  # noqa: E402 - last: it writes with this module's helpers
