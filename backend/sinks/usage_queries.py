"""The breakdown queries over usage.py's tables, for the SQL sinks.

Each reads one table by its primary key: the blocks covering the range
(`rollups.cover`: whole days in the middle, 6-hour and hour blocks at the
edges), then the filters, summed over every shard and grouped in the
database. None reads events.
"""

from __future__ import annotations

from collections.abc import Sequence

from branchpy_telemetry.backend.sinks import histogram
from branchpy_telemetry.backend.sinks import rollups as R
from branchpy_telemetry.backend.sinks import usage as U
from branchpy_telemetry.backend.sinks import usage_types as T
from branchpy_telemetry.backend.sinks.base import RecentError, TimeRange
from branchpy_telemetry.backend.sinks.sql_cursor import hour_where, where_clause
from branchpy_telemetry.backend.sinks.sql_store import IN_CHUNK, chunks, qmarks

_GROUPABLE = set(U.USAGE_KEYS)


def cover_condition(rng: TimeRange, levels: tuple[int, ...] = U.LEVELS) -> tuple[str, list]:
    """`(level = ? AND start >= ? AND start < ?) OR …` over the blocks covering the range."""
    terms, args = [], []
    for level, first, last in R.cover(*R.hour_range(rng), levels):
        where, bounds = hour_where("start", first, last)
        terms.append("(" + " AND ".join(["level = ?", *where]) + ")")
        args += [level, *bounds]
    return "(" + " OR ".join(terms) + ")", args


def _filtered(flt: T.UsageFilter, allowed: tuple[str, ...], levels: tuple[int, ...] = U.LEVELS):
    condition, args = cover_condition(flt.range, levels)
    where = [condition]
    for column, value in flt.fields(allowed):
        where.append(f"{column} = ?")
        args.append(value)
    return where, args


def usage(cur, flt: T.UsageFilter, group_by: Sequence[str], bucket: int | None) -> list[T.UsageGroup]:
    unknown = set(group_by) - _GROUPABLE
    if unknown or bucket not in (None, R.HOUR, R.DAY):
        raise ValueError(f"cannot group usage by {sorted(unknown)} / bucket {bucket}")
    levels = (R.HOUR,) if bucket == R.HOUR else U.LEVELS
    where, args = _filtered(flt, U.USAGE_KEYS, levels)
    groups = [*([f"start - (start % {bucket})"] if bucket else []), *group_by]
    select = ", ".join([*groups, "SUM(events)", "SUM(errors)", "SUM(with_status)", "SUM(dur_n)",
                        "MAX(dur_max)"])
    group = f" GROUP BY {', '.join(groups)}" if groups else ""
    cur.execute(f"SELECT {select} FROM usage_rollup{where_clause(where)}{group}", tuple(args))
    out = []
    for row in cur.fetchall():
        b = row[0] if bucket else None
        keys = row[1 if bucket else 0:len(groups)]
        if row[len(groups)] is None:  # no row at all (an ungrouped SUM)
            continue
        out.append(T.usage_group(keys, b, *row[len(groups):]))
    return T.ordered(out)


def name_percentiles(cur, flt: T.UsageFilter, qs: Sequence[float]) -> dict[tuple[str, str], list]:
    where, args = _filtered(flt, ("category", "name"))
    cur.execute(f"SELECT category, name, cum FROM name_hist{where_clause(where)}", tuple(args))
    blobs: dict[tuple[str, str], list[bytes]] = {}
    for category, name, cum in cur.fetchall():
        blobs.setdefault((category, name), []).append(bytes(cum))
    return {key: histogram.percentiles(found, qs) for key, found in sorted(blobs.items())}


def install_counts(cur, flt: T.UsageFilter, group_by: str | None, by_day: bool) -> list[T.InstallCount]:
    if group_by not in (None, *T.INSTALL_KEYS):
        raise ValueError(f"cannot count installs by {group_by!r}")
    where, args = hour_where("day", *T.day_range(flt.range))
    for column, value in flt.fields(T.INSTALL_KEYS):
        where.append(f"{column} = ?")
        args.append(value)
    groups = [*([group_by] if group_by else []), *(["day"] if by_day else [])]
    select = ", ".join([*groups, "COUNT(DISTINCT governance_id)"])
    group = f" GROUP BY {', '.join(groups)}" if groups else ""
    cur.execute(f"SELECT {select} FROM install_days{where_clause(where)}{group}", tuple(args))
    out = []
    for row in cur.fetchall():
        key = row[0] if group_by else None
        day = row[len(groups) - 1] if by_day else None
        out.append(T.InstallCount(key=key, day=None if day is None else int(day), installs=int(row[-1])))
    return sorted((c for c in out if c.installs), key=lambda c: (c.day or 0, c.key or ""))


def error_groups(cur, flt: T.UsageFilter, limit: int) -> list[RecentError]:
    where, args = _filtered(flt, ("category", "name"))
    cur.execute("SELECT error_hash, error_code, category, name, SUM(count), MIN(first_us), MAX(last_us) "
                f"FROM error_rollup{where_clause(where)} GROUP BY error_hash, error_code, category, name",
                tuple(args))
    groups = T.merge_error_rows(cur.fetchall(), limit)
    types: dict[str, str] = {}
    for chunk in chunks([g.error_hash for g in groups], IN_CHUNK):
        cur.execute("SELECT error_hash, error_type FROM error_types "
                    f"WHERE error_hash IN ({qmarks(len(chunk))})", tuple(chunk))
        types.update(cur.fetchall())
    return T.with_types(groups, types)


def uploads(cur, rng: TimeRange) -> tuple[int, str | None]:
    where, args = hour_where("hour", *R.hour_range(rng))
    cur.execute(f"SELECT SUM(packages), MAX(last_us) FROM upload_hour{where_clause(where)}", tuple(args))
    packages, last = cur.fetchone()
    return int(packages or 0), R.us_to_text(int(last)) if last else None
