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

import operator

from branchpy_telemetry.backend.sinks import histogram
from branchpy_telemetry.backend.sinks import rollups as R
from branchpy_telemetry.backend.sinks import usage as U
from branchpy_telemetry.backend.sinks.sql_store import (
    ERROR_COLUMNS,
    Dialect,
    chunks,
    read_locked,
    upsert_rows,
)

# Additive tables keyed by hour: (natural key, the column holding the hour, summed columns, columns
# keeping their maximum, columns keeping their minimum).
ADDITIVE = {
    "rollup_hour": (("hour",), "hour", ("events", "errors", "with_status", "dur_n", "dur_sum"), (), ()),
    "rollup_dim": (("dim", "hour", "dkey"), "hour", ("events",), (), ()),
    "session_hour": (("hour",), "hour", ("sessions", "duration_us", "events"), (), ()),
    "upload_hour": (("hour",), "hour", ("packages",), ("last_us",), ()),
}
# Additive tables keyed by (level, start, ...): blocks of `level` seconds (usage.py).
LEVELED = {
    "usage_rollup": (U.USAGE_KEYS, U.USAGE_SUMS, ("dur_max",), ()),
    "error_rollup": (U.ERROR_KEYS, ("count",), ("last_us",), ("first_us",)),
}
# Cumulative histograms: (table, natural key after level and start).
HISTOGRAMS = (("hist", ()), ("name_hist", ("category", "name")))


def compact_batch(cur, dialect: Dialect, before_us: int, limit: int) -> int:
    """Fold up to `limit` shard rows whose time is wholly before `before_us`; returns how many."""
    before_s = before_us // 1_000_000
    folded = 0
    for table, (keys, hour_column, sums, maxes, mins) in ADDITIVE.items():
        folded += _fold_additive(cur, dialect, table, keys, (sums, maxes, mins), f"{hour_column} <= ?",
                                 (before_s - R.HOUR,), limit - folded)
    for level in R.HIST_LEVELS:
        for table, (keys, sums, maxes, mins) in LEVELED.items():
            folded += _fold_additive(cur, dialect, table, ("level", "start", *keys), (sums, maxes, mins),
                                     "level = ? AND start <= ?", (level, before_s - level), limit - folded)
        for table, keys in HISTOGRAMS:
            folded += _fold_hist(cur, dialect, table, keys, level, before_s - level, limit - folded)
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


def _fold_additive(cur, dialect: Dialect, table: str, keys: tuple[str, ...],
                   columns: tuple[tuple, tuple, tuple], where: str, args: tuple, limit: int) -> int:
    sums, maxes, mins = columns
    values = [*sums, *maxes, *mins]
    rows = _locked_rows(cur, dialect, table, [*keys, "shard", *values], where, args, [*keys, "shard"], limit)
    if not rows:
        return 0
    folds = (*(operator.add for _ in sums), *(max for _ in maxes), *(min for _ in mins))
    totals: dict[tuple, list] = {}
    for row in rows:
        key, new = row[:len(keys)], row[len(keys) + 1:]
        cell = totals.get(key)
        totals[key] = list(new) if cell is None else [fold(a, b) for fold, a, b in zip(folds, cell, new,
                                                                                        strict=True)]
    upsert_rows(cur, dialect.upsert_add(table, [*keys, "shard"], sums, maxes, mins),
                [(*key, 0, *cell) for key, cell in sorted(totals.items())])
    _delete_rows(cur, table, keys, [row[:len(keys) + 1] for row in rows])
    return len(rows)


def _fold_hist(cur, dialect: Dialect, table: str, keys: tuple[str, ...], level: int, last_start: int,
               limit: int) -> int:
    natural = ("start", *keys)
    rows = _locked_rows(cur, dialect, table, [*natural, "shard", "cum"], "level = ? AND start <= ?",
                        (level, last_start), [*natural, "shard"], limit)
    if not rows:
        return 0
    blobs: dict[tuple, list[bytes]] = {}
    for *key, _, cum in rows:
        blobs.setdefault(tuple(key[:len(natural)]), []).append(bytes(cum))
    condition = " AND ".join(f"{c} = ?" for c in natural)
    merged = []
    for key in sorted(blobs):
        cur.execute(f"SELECT cum FROM {table} WHERE level = ? AND {condition} AND shard = 0"
                    f"{dialect.lock_suffix}", (level, *key))
        old = [bytes(row[0]) for row in cur.fetchall()]
        merged.append((level, *key, 0, histogram.merge([*blobs[key], *old])))
    upsert_rows(cur, dialect.upsert_replace(table, ["level", *natural, "shard"], ["cum"]), merged)
    _delete_rows(cur, table, ("level", *natural), [(level, *row[:len(natural) + 1]) for row in rows])
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
