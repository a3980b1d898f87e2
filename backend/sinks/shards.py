"""Striped aggregates: no row that every upload writes.

Every aggregate row that concurrent uploads would otherwise share — the
totals, the hourly rollups (`rollup_hour`, `rollup_dim`), the duration
histograms (`hist`), `session_hour`, the error groups, and the dashboard's
breakdowns (usage.py: `usage_rollup`, `name_hist`, `error_rollup`,
`upload_hour`) — carries a `shard` column, last in its primary key. An upload writes only the rows of
its package's shard, `shard_of(package_id, shards)`, one of `shards`
stripes; every read sums (or merges) over all shards, so answers stay exact
whatever shards hold rows. Two uploads touch a common aggregate row only
when their packages fall in the same shard. On a multi-primary Galera
cluster, where two nodes committing overlapping write sets makes the later
one fail certification (error 1213) and run again, that turns "every pair
of concurrent uploads conflicts" into "one pair in `shards` may".

Readers never depend on the shard count: writers may use any count
(`BRANCHPY_TELEMETRY_BACKEND_WRITE_SHARDS`; 1 is the old single row), the
rows of a database migrated from before shards sit in one shard, and
retention deletes by time across all shards. The per-session and per-install
rows (`sessions`, `installs`, `install_days`), the one row per error group of
`error_types` and the events are not striped: their keys
already differ between uploads (a session's packages arrive one after the
other from one install).

Adding a rollup table — the pattern every striped table follows:

1. Schema: one migration (same number in mysql_schema.py and
   sqlite_schema.py) creating the table with its natural key followed by
   `shard`: `PRIMARY KEY (<natural key>, shard)`. The natural key leads, so
   range reads walk the primary key and need no other index (list it in the
   primary-key test of tests/backend/test_sink_migration.py).
2. Deltas: count the new rows into `{natural key: [additive values]}` in
   rollups.compute_deltas (or a function of the same EventRows).
3. Write: in sql_store.apply_deltas, one
   `upsert_rows(cur, dialect.upsert_add(table, [*keys, "shard"], adds), rows)`
   with rows `(*key, shard, *values)` sorted by key (concurrent transactions
   then take their locks in the same order). Columns must be sums/counts
   (`adds`) or maxima (`maxes`); anything else is a read-merge-write under
   lock of the package's own shard row (see `hist`, `error_groups`).
4. Read: `SELECT <key>, SUM(<col>) ... GROUP BY <key>`, never filtered by shard.
5. Retention: sql_store.purge_aggregates deletes by time, all shards at once;
   compaction.py folds the shards of old rows into shard 0 (add the table to
   its ADDITIVE map, or a fold of its own for a merged column).
6. MemorySink keeps one unstriped dict per rollup (one lock, no conflicts);
   the sink agreement test checks it gives the SQL sinks' answers.
"""

from __future__ import annotations

import zlib

DEFAULT_WRITE_SHARDS = 128
MAX_WRITE_SHARDS = 1024  # the column is a SMALLINT
PURGE_SHARD = 0  # retention's negative deltas to the totals


def shard_of(package_id: str, shards: int) -> int:
    """The stripe a package writes its aggregates to: stable for a package (a retry or a
    re-delivery picks the same one), uniform over package ids."""
    return zlib.crc32(package_id.encode()) % shards


def check_shards(shards: int) -> int:
    if not 1 <= shards <= MAX_WRITE_SHARDS:
        raise ValueError(f"write shards must be between 1 and {MAX_WRITE_SHARDS}, not {shards}")
    return shards
