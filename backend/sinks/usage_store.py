"""Writing usage.py's breakdowns, inside the transaction that stores a package.

Striped like every aggregate (shards.py): `usage_rollup`, `name_hist`,
`error_rollup` and `upload_hour` rows carry the package's shard. The
per-install rows (`install_days`) and the one row per error group of
`error_types` are written only when absent (read first, without a lock), so
an upload that finds them already there writes nothing to them.
"""

from __future__ import annotations

from branchpy_telemetry.backend.sinks import histogram
from branchpy_telemetry.backend.sinks import rollups as R
from branchpy_telemetry.backend.sinks import usage as U
from branchpy_telemetry.backend.sinks.sql_store import IN_CHUNK, Dialect, chunks, qmarks, upsert_rows

USAGE_KEY_COLUMNS = ["level", "start", *U.USAGE_KEYS, "shard"]
ERROR_KEY_COLUMNS = ["level", "start", *U.ERROR_KEYS, "shard"]


def write_usage(cur, dialect: Dialect, d: U.UsageDeltas, ctx: U.PackageContext, shard: int) -> None:
    platform = (ctx.version, ctx.os, ctx.python)
    upsert_rows(cur, dialect.upsert_add("usage_rollup", USAGE_KEY_COLUMNS, U.USAGE_SUMS, ["dur_max"]),
                [(*key, *platform, shard, *values) for key, values in sorted(d.usage.items())])
    upsert_rows(cur, dialect.upsert_add("error_rollup", ERROR_KEY_COLUMNS, ["count"], ["last_us"],
                                        ["first_us"]),
                [(*key, shard, n, last, first) for key, (n, first, last) in sorted(d.errors.items())])
    merge_name_hist(cur, dialect, d.name_hist, shard)
    insert_install_days(cur, sorted(d.days), ctx)


def merge_name_hist(cur, dialect: Dialect, blocks: dict, shard: int) -> None:
    """Add each (level, start, category, name) block's counts to the shard's cumulative histogram."""
    if not blocks:
        return
    old: dict[tuple, bytes] = {}
    for level in U.LEVELS:
        starts = sorted({key[1] for key in blocks if key[0] == level})
        for chunk in chunks(starts, IN_CHUNK):
            cur.execute(f"SELECT start, category, name, cum FROM name_hist WHERE level = ? AND shard = ? "
                        f"AND start IN ({qmarks(len(chunk))}){dialect.lock_suffix}", (level, shard, *chunk))
            for start, category, name, cum in cur.fetchall():
                if (level, start, category, name) in blocks:
                    old[(level, start, category, name)] = bytes(cum)
    inserts, updates = [], []
    for key in sorted(blocks):
        blob = histogram.add_counts(old.get(key), blocks[key])
        (updates if key in old else inserts).append((*key, shard, blob))
    upsert_rows(cur, "INSERT INTO name_hist (level, start, category, name, shard, cum) "
                     "VALUES (?, ?, ?, ?, ?, ?)", inserts)
    upsert_rows(cur, dialect.upsert_replace("name_hist", ["level", "start", "category", "name", "shard"],
                                            ["cum"]), updates)


def insert_install_days(cur, days: list[int], ctx: U.PackageContext) -> None:
    if not days:
        return
    install = (ctx.governance_id, ctx.version, ctx.os, ctx.python)
    cur.execute("SELECT day FROM install_days WHERE governance_id = ? AND version = ? AND os = ? "
                f"AND python = ? AND day IN ({qmarks(len(days))})", (*install, *days))
    known = {row[0] for row in cur.fetchall()}
    upsert_rows(cur, "INSERT INTO install_days (day, governance_id, version, os, python) "
                     "VALUES (?, ?, ?, ?, ?)", [(day, *install) for day in days if day not in known])


def insert_error_types(cur, types: dict[str, str]) -> None:
    if not types:
        return
    hashes = sorted(types)
    known: set[str] = set()
    for chunk in chunks(hashes, IN_CHUNK):
        cur.execute(f"SELECT error_hash FROM error_types WHERE error_hash IN ({qmarks(len(chunk))})",
                    tuple(chunk))
        known.update(row[0] for row in cur.fetchall())
    upsert_rows(cur, "INSERT INTO error_types (error_hash, error_type) VALUES (?, ?)",
                [(h, types[h]) for h in hashes if h not in known])


def add_upload(cur, dialect: Dialect, received_us: int, shard: int) -> None:
    cur.execute(dialect.upsert_add("upload_hour", ["hour", "shard"], ["packages"], ["last_us"]),
                (R.hour_of(received_us), shard, 1, received_us))
