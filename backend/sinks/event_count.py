"""The `total` of an events listing: exact, and flat in the number of matching events.

A COUNT(*) over the matching rows grows with them (a 7-day error filter over a
million events reads every error row). When the filter is one a rollup already
counts per hour — time only, one `category`, one `source`, or `status=error` —
the whole hours inside the range are summed from that rollup and only the two
edges are counted row by row: [start, first whole hour) and [last whole hour, end).

Exact, not an estimate: the rollups count exactly the stored events (both are
written in one transaction from the same new rows). Retention deletes events
oldest first and keeps the rollup row of the hour it cut through, so rollup
rows of the hour holding the earliest stored event, and of any hour before it,
are never summed: that hour is counted row by row as an edge.

Any other filter (a name, a session, another status, two filters at once)
counts rows as before; `name` and `session_id` have their own indexes.

Reads are not one snapshot (each statement autocommits, as the page and its
count always did): while packages are being stored, a total may include or
miss the events committed between its statements; at rest it is exact.
"""

from __future__ import annotations

from branchpy_telemetry.backend.sinks import rollups as R
from branchpy_telemetry.backend.sinks.base import EventFilter

_FILTER_FIELDS = ("category", "source", "name", "status", "session_id", "error_hash")
_HOUR_US = R.HOUR * 1_000_000


def start_us(flt: EventFilter) -> int | None:
    return R.datetime_to_us(flt.start) if flt.start is not None else None


def end_us(flt: EventFilter) -> int | None:
    return R.datetime_to_us(flt.end) if flt.end is not None else None


def time_where(lo: int | None, hi: int | None) -> list[str]:
    """Conditions for lo <= ts_us < hi (either bound may be open)."""
    return (["ts_us >= ?"] if lo is not None else []) + (["ts_us < ?"] if hi is not None else [])


def time_args(lo: int | None, hi: int | None) -> list[int]:
    return [bound for bound in (lo, hi) if bound is not None]


def rollup_for(flt: EventFilter) -> tuple[str, str, list[str], list] | None:
    """(table, summed column, where, args) of the rollup counting `flt`'s events per hour, or None."""
    given = [field for field in _FILTER_FIELDS if getattr(flt, field) is not None]
    if not given:
        return "rollup_hour", "events", [], []
    if given == ["status"] and flt.status == "error":
        return "rollup_hour", "errors", [], []
    if given in (["category"], ["source"]):
        return "rollup_dim", "events", ["dim = ?", "dkey = ?"], [given[0], getattr(flt, given[0])]
    return None


def count_events(cur, flt: EventFilter, where: list[str], args: list) -> int:
    """How many events match `flt` (`where`/`args`: its conditions on everything but time)."""
    lo, hi = start_us(flt), end_us(flt)
    rollup = rollup_for(flt)
    if rollup is None:
        return _count_rows(cur, where, args, lo, hi)
    cur.execute("SELECT MIN(ts_us) FROM events")
    earliest = cur.fetchone()[0]
    if earliest is None:
        return 0
    first_whole = R.hour_of(earliest) * 1_000_000 + _HOUR_US  # the earliest event's hour is an edge
    if lo is not None:
        first_whole = max(first_whole, lo + (-lo) % _HOUR_US)
    end_whole = hi - hi % _HOUR_US if hi is not None else None
    if end_whole is not None and end_whole <= first_whole:  # no whole hour inside: count the rows
        return _count_rows(cur, where, args, lo, hi)
    # Each edge gets its own two bounds (SQLite ranges an index on one bound per side).
    total = _count_rows(cur, where, args, lo, first_whole)
    if end_whole is not None:
        total += _count_rows(cur, where, args, end_whole, hi)
    table, column, rollup_where, rollup_args = rollup
    hours, hour_args = [*rollup_where, "hour >= ?"], [*rollup_args, first_whole // 1_000_000]
    if end_whole is not None:
        hours.append("hour < ?")
        hour_args.append(end_whole // 1_000_000)
    cur.execute(f"SELECT COALESCE(SUM({column}), 0) FROM {table} WHERE {' AND '.join(hours)}",
                tuple(hour_args))
    return total + int(cur.fetchone()[0])


def _count_rows(cur, where: list[str], args: list, lo: int | None, hi: int | None) -> int:
    conditions = where + time_where(lo, hi)
    condition = " WHERE " + " AND ".join(conditions) if conditions else ""
    cur.execute(f"SELECT COUNT(*) FROM events{condition}", (*args, *time_args(lo, hi)))
    return int(cur.fetchone()[0])
