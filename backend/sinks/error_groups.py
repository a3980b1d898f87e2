"""The error groups seen last, read from their striped rows.

An error group (one error_hash) has a row in each shard that saw it
(shards.py). The `limit` groups seen last are the first `limit` distinct
hashes met when walking the rows newest first (last_us DESC, error_hash
DESC: the ix_error_groups_last order), since the first row met of a group is
its latest. Rows are walked in pages of a few times `limit` until enough
hashes are found or the rows run out; then every row of those hashes is
read, to sum the counts and name each group after its latest sighting. Both
reads go through an index: the cost follows `limit` and the number of
shards, not the number of groups.
"""

from __future__ import annotations

from branchpy_telemetry.backend.sinks import rollups as R
from branchpy_telemetry.backend.sinks.base import RecentError
from branchpy_telemetry.backend.sinks.sql_store import ERROR_COLUMNS, IN_CHUNK, chunks, qmarks

_PAGE_FACTOR = 4


def recent_error_groups(cur, limit: int) -> list[RecentError]:
    hashes = _latest_hashes(cur, limit)
    merged: dict[str, list] = {}
    for chunk in chunks(hashes, IN_CHUNK):
        cur.execute(f"SELECT error_hash, {', '.join(ERROR_COLUMNS)} FROM error_groups "
                    f"WHERE error_hash IN ({qmarks(len(chunk))})", tuple(chunk))
        for error_hash, *row in cur.fetchall():
            merged[error_hash] = R.merge_error(merged.get(error_hash), list(row))
    # sorted again: a row committed between the two reads may have moved a group
    latest = sorted(merged.items(), key=lambda kv: (kv[1][3], kv[0]), reverse=True)
    return [RecentError(error_hash=h, error_code=v[0], name=v[1], count=v[2], last_seen=R.us_to_text(v[3]))
            for h, v in latest]


def _latest_hashes(cur, limit: int) -> list[str]:
    found: dict[str, None] = {}  # insertion-ordered set
    page, offset = _PAGE_FACTOR * max(1, limit), 0
    while len(found) < limit:
        cur.execute("SELECT error_hash FROM error_groups ORDER BY last_us DESC, error_hash DESC "
                    "LIMIT ? OFFSET ?", (page, offset))
        rows = cur.fetchall()
        for (error_hash,) in rows:
            found.setdefault(error_hash)
            if len(found) == limit:
                break
        if len(rows) < page:
            break
        offset += page
    return list(found)
