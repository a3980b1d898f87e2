"""What the breakdown queries take and give (usage.py keeps the rows they read).

Every sink answers these the same way: the SQL sinks group in the database,
MemorySink in Python, and both hand their groups to the functions here to
name, merge and order them.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from branchpy_telemetry.backend.sinks import rollups as R
from branchpy_telemetry.backend.sinks.base import RecentError, TimeRange
from branchpy_telemetry.backend.sinks.usage import USAGE_KEYS

INSTALL_KEYS = ("version", "os", "python")


class UsageFilter(msgspec.Struct, kw_only=True, frozen=True):
    """A time range and the dashboard's filters; None: not filtered on that field."""
    start: datetime | None = None  # inclusive, UTC
    end: datetime | None = None  # exclusive, UTC
    category: str | None = None
    source: str | None = None
    name: str | None = None
    version: str | None = None
    os: str | None = None
    python: str | None = None

    @property
    def range(self) -> TimeRange:
        return TimeRange(start=self.start, end=self.end)

    def fields(self, allowed: tuple[str, ...] = USAGE_KEYS) -> list[tuple[str, str]]:
        """(column, value) of every filter set among `allowed`, in a fixed order."""
        return [(col, getattr(self, col)) for col in allowed if getattr(self, col) is not None]

    @property
    def has_fields(self) -> bool:
        return bool(self.fields())


class UsageGroup(msgspec.Struct, kw_only=True, array_like=True):
    """The sums of one group of usage rows."""
    key: list[str]  # the group_by columns' values
    bucket: int | None  # start of the time bucket (epoch seconds) when grouped by time
    events: int
    errors: int
    with_status: int
    dur_n: int
    dur_max: float | None  # None when no event of the group had a duration


class InstallCount(msgspec.Struct, kw_only=True, array_like=True):
    key: str | None
    day: int | None
    installs: int


def usage_group(key, bucket, events, errors, with_status, dur_n, dur_max) -> UsageGroup:
    return UsageGroup(key=list(key), bucket=None if bucket is None else int(bucket), events=int(events),
                      errors=int(errors), with_status=int(with_status), dur_n=int(dur_n),
                      dur_max=float(dur_max) if dur_n else None)


def ordered(groups: list[UsageGroup]) -> list[UsageGroup]:
    return sorted((g for g in groups if g.events), key=lambda g: (g.bucket or 0, g.key))


def day_range(rng: TimeRange) -> tuple[int | None, int | None]:
    """[first day, end day) in epoch seconds covering every day the range overlaps."""
    lo, hi = R.hour_range(rng)
    return (None if lo is None else lo - lo % R.DAY,
            None if hi is None else hi + (-hi) % R.DAY)


def merge_error_rows(rows, limit: int) -> list[RecentError]:
    """Rows (error_hash, error_code, category, name, count, first_us, last_us), one per code and command
    -> one group per error_hash: counts summed, first and last sighting, every command it affected; the
    latest sighting (then the larger code and name) names its code and command. Most recent first."""
    groups: dict[str, list] = {}
    for error_hash, code, _category, name, count, first, last in rows:
        g = groups.get(error_hash)
        if g is None:
            g = groups[error_hash] = [0, first, last, (last, code, name), set()]
        g[0] += int(count)
        g[1] = min(g[1], first)
        g[2] = max(g[2], last)
        g[3] = max(g[3], (last, code, name))
        g[4].add(name)
    latest = sorted(groups.items(), key=lambda kv: (kv[1][2], kv[0]), reverse=True)[:max(0, limit)]
    return [RecentError(error_hash=h, error_code=g[3][1] or None, name=g[3][2], count=g[0],
                        last_seen=R.us_to_text(int(g[2])), first_seen=R.us_to_text(int(g[1])),
                        commands=sorted(g[4]))
            for h, g in latest]


def with_types(groups: list[RecentError], types: dict[str, str]) -> list[RecentError]:
    return [msgspec.structs.replace(g, error_type=types[g.error_hash]) if g.error_hash in types else g
            for g in groups]
