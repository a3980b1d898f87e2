"""Folding the shards of old aggregate rows into one row per key.

Uploads write their package's shard of each aggregate row (shards.py), so a
busy hour ends up with up to `shards` rows per key, and a read over it sums
them all. Once an hour is old — uploads are writing the current hours — its
rows are folded: every row of a key but shard 0 is added into shard 0 and
deleted, in one transaction per batch. Answers are the same before and
after (sums are sums; histograms add bucket by bucket; an error group keeps
its latest sighting), so a dashboard range over old data reads about one
row per key again, whatever the write shards. An event arriving late for a
folded hour writes its shard again; the next run folds it.

The rows folded are read under lock (FOR UPDATE on MySQL; SQLite's writer
lock), in key order like the uploads: an upload writing one of them at the
same moment commits first (and is folded) or waits (on Galera: fails
certification and is retried). `branchpy-telemetry-backend purge` runs it
after retention, for aggregates older than a day (`--compact-older-than`).
"""

from __future__ import annotations

from . import histogram
from . import rollups as R
from .sql_store import ERROR_COLUMNS, Dialect, chunks, read_locked, upsert_rows

# Additive tables: (natural key, the column holding the hour, summed columns).
ADDITIVE = {
    "rollup_hour": (("hour",), "hour", ("events", "errors", "with_status", "dur_n", "dur_sum")),
    "rollup_dim": (("dim", "hour", "dkey"), "hour", ("events",)),
    "session_hour": (("hour",), "hour", ("sessions", "duration_us", "events")),
}


def compact_batch(cur, dialect: Dialect, before_us: int, limit: int) -> int:
    """Fold up to `limit` shard rows whose time is wholly before `before_us`; returns how many."""
    before_s = before_us // 1_000_000
    folded = 0
    for table, (keys, hour_column, sums) in ADDITIVE.items():
        folded += _fold_additive(cur, dialect, table, keys, sums, f"{hour_column} <= ?", before_s - R.HOUR,
                                 limit - folded)
    for level in R.HIST_LEVELS:
        folded += _fold_hist(cur, dialect, level, before_s - level, limit - folded)
    folded += _fold_errors(cur, dialect, before_us, limit - folded)
    return folded


def _locked_rows(cur, dialect: Dialect, table: str, columns: list[str], where: str, args: tuple,
                 order: list[str], limit: int) -> list[tuple]:
    if limit <= 0:
        return []
    cur.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE {where} AND shard <> 0 "
                f"ORDER BY {', '.join(order)} LIMIT ?{dialect.lock_suffix}", (*args, limit))
    return cur.fetchall()


def _delete_rows(cur, table: str, keys: tuple[str, ...], rows: list[tuple]) -> None:
    """Delete exactly these rows: `rows` hold their natural key then their shard."""
    condition = " AND ".join(f"{c} = ?" for c in (*keys, "shard"))
    for chunk in chunks(rows, 500):
        cur.executemany(f"DELETE FROM {table} WHERE {condition}", chunk)


def _fold_additive(cur, dialect: Dialect, table: str, keys: tuple[str, ...], sums: tuple[str, ...],
                   where: str, bound: int, limit: int) -> int:
    rows = _locked_rows(cur, dialect, table, [*keys, "shard", *sums], where, (bound,), [*keys, "shard"],
                        limit)
    if not rows:
        return 0
    totals: dict[tuple, list] = {}
    for row in rows:
        cell = totals.setdefault(row[:len(keys)], [0] * len(sums))
        for i, value in enumerate(row[len(keys) + 1:]):
            cell[i] += value
    upsert_rows(cur, dialect.upsert_add(table, [*keys, "shard"], sums),
            [(*key, 0, *values) for key, values in sorted(totals.items())])
    _delete_rows(cur, table, keys, [row[:len(keys) + 1] for row in rows])
    return len(rows)


def _fold_hist(cur, dialect: Dialect, level: int, last_start: int, limit: int) -> int:
    rows = _locked_rows(cur, dialect, "hist", ["start", "shard", "cum"], "level = ? AND start <= ?",
                        (level, last_start), ["start", "shard"], limit)
    if not rows:
        return 0
    blobs: dict[int, list[bytes]] = {}
    for start, _, cum in rows:
        blobs.setdefault(start, []).append(bytes(cum))
    starts = sorted(blobs)
    old = read_locked(cur, dialect, "hist", "start", "cum", starts, 0, where="level = ? AND ", args=(level,))
    merged = [(level, start, 0, histogram.merge([*blobs[start], *(bytes(cum) for cum in old.get(start, []))]))
              for start in starts]
    upsert_rows(cur, dialect.upsert_replace("hist", ["level", "start", "shard"], ["cum"]), merged)
    _delete_rows(cur, "hist", ("level", "start"), [(level, start, shard) for start, shard, _ in rows])
    return len(rows)


def _fold_errors(cur, dialect: Dialect, before_us: int, limit: int) -> int:
    rows = _locked_rows(cur, dialect, "error_groups", ["error_hash", "shard", *ERROR_COLUMNS], "last_us < ?",
                        (before_us,), ["error_hash", "shard"], limit)
    if not rows:
        return 0
    groups: dict[str, list] = {}
    for error_hash, _, *values in rows:
        groups[error_hash] = R.merge_error(groups.get(error_hash), list(values))
    hashes = sorted(groups)
    old = read_locked(cur, dialect, "error_groups", "error_hash", ", ".join(ERROR_COLUMNS), hashes, 0)
    merged = [(h, 0, *R.merge_error(old.get(h), groups[h])) for h in hashes]
    upsert_rows(cur, dialect.upsert_replace("error_groups", ["error_hash", "shard"], ERROR_COLUMNS), merged)
    _delete_rows(cur, "error_groups", ("error_hash",), [row[:2] for row in rows])
    return len(rows)
