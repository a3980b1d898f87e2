"""Filling usage.py's tables from what a database already holds (schema version 3).

A database written before version 3 has events and packages but none of the
breakdowns. The migration to version 3 replays the stored events, in
event_id order and in batches, through the same deltas as an upload
(usage.compute_usage, written by usage_store into shard 0), each with its
package's version and platform, and counts the stored packages per hour of
receipt. It starts by emptying those tables, so a migration interrupted
half-way and run again counts everything once.

What older databases never kept stays unknown: the Python of packages stored
before version 3 (their rows say `""`) and the exception types of their
error groups.
"""

from __future__ import annotations

import structlog

from branchpy_telemetry.backend.sinks import rollups as R
from branchpy_telemetry.backend.sinks import usage as U
from branchpy_telemetry.backend.sinks import usage_store
from branchpy_telemetry.backend.sinks.sql_store import Dialect, upsert_rows

BACKFILL_VERSION = 3
TABLES = ("usage_rollup", "name_hist", "error_rollup", "install_days", "upload_hour")
BATCH = 5000
log = structlog.get_logger("backend.sinks.backfill")
_COLUMNS = ", ".join(f"e.{c}" for c in R.EVENT_COLUMNS)


def backfill_usage(cur, dialect: Dialect, batch: int = BATCH) -> int:
    """Rebuild the version-3 tables from the stored events and packages; returns the events replayed."""
    for table in TABLES:
        cur.execute(f"DELETE FROM {table}")
    cur.execute("SELECT received_us - (received_us % 3600000000), COUNT(*), MAX(received_us) FROM packages "
                "GROUP BY received_us - (received_us % 3600000000)")
    hours = sorted((int(hour_us) // 1_000_000, 0, int(n), int(last)) for hour_us, n, last in cur.fetchall())
    upsert_rows(cur, dialect.upsert_add("upload_hour", ["hour", "shard"], ["packages"], ["last_us"]), hours)
    replayed, after = 0, ""
    while True:
        cur.execute(f"SELECT {_COLUMNS}, p.branchpy_version, p.platform_os, p.platform_python FROM events e "
                    "JOIN packages p ON p.package_id = e.package_id WHERE e.event_id > ? "
                    "ORDER BY e.event_id LIMIT ?", (after, batch))
        rows = cur.fetchall()
        by_context: dict[U.PackageContext, list] = {}
        for row in rows:
            event, (version, os_name, python) = tuple(row[:len(R.EVENT_COLUMNS)]), row[len(R.EVENT_COLUMNS):]
            ctx = U.PackageContext(version=version, os=os_name, python=python, governance_id=event[-1])
            by_context.setdefault(ctx, []).append(event)
        for ctx, events in by_context.items():
            usage_store.write_usage(cur, dialect, U.compute_usage(events), ctx, 0)
        replayed += len(rows)
        if len(rows) < batch:
            break
        after = rows[-1][0]
    if replayed:
        log.info("sink.backfilled", events=replayed)
    return replayed
