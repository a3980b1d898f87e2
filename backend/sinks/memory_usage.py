"""MemorySink's breakdowns (usage.py): one unstriped dict per table, the same deltas
and the same grouping rules as usage_queries.py, in Python."""

from __future__ import annotations

import threading

from branchpy_telemetry.backend.sinks import histogram
from branchpy_telemetry.backend.sinks import rollups as R
from branchpy_telemetry.backend.sinks import usage as U
from branchpy_telemetry.backend.sinks import usage_types as T
from branchpy_telemetry.backend.sinks.base import RecentError, TimeRange


def _in(value: int, lo: int | None, hi: int | None) -> bool:
    return (lo is None or value >= lo) and (hi is None or value < hi)


def _covered(level: int, start: int, blocks: list[tuple]) -> bool:
    return any(level == size and _in(start, a, b) for size, a, b in blocks)


class MemoryUsage:
    """Mixed into MemorySink; `_lock` is the sink's."""

    _lock: threading.RLock

    def _init_usage(self) -> None:
        # (level, start, *USAGE_KEYS) -> [events, errors, with_status, dur_n, dur_max]
        self._usage: dict[tuple, list] = {}
        self._name_hist: dict[tuple, bytes] = {}  # (level, start, category, name) -> cumulative histogram
        # (level, start, *ERROR_KEYS) -> [count, first_us, last_us]
        self._error_rollup: dict[tuple, list] = {}
        self._error_types: dict[str, str] = {}
        self._install_days: set[tuple] = set()  # (day, governance_id, version, os, python)
        self._upload_hours: dict[int, list] = {}  # hour -> [packages, last_us]

    def _apply_usage(self, d: U.UsageDeltas, ctx: U.PackageContext, types: dict[str, str],
                     received_us: int) -> None:
        for (level, start, *key), values in d.usage.items():
            full = (level, start, *key, ctx.version, ctx.os, ctx.python)
            old = self._usage.get(full)
            self._usage[full] = list(values) if old is None else [
                *(a + b for a, b in zip(old[:4], values[:4], strict=True)), max(old[4], values[4])]
        for key, counts in d.name_hist.items():
            self._name_hist[key] = histogram.add_counts(self._name_hist.get(key), counts)
        for key, (n, first, last) in d.errors.items():
            old = self._error_rollup.get(key)
            self._error_rollup[key] = [n, first, last] if old is None else [
                old[0] + n, min(old[1], first), max(old[2], last)]
        for error_hash, error_type in types.items():
            self._error_types.setdefault(error_hash, error_type)
        self._install_days.update((day, ctx.governance_id, ctx.version, ctx.os, ctx.python) for day in d.days)
        cell = self._upload_hours.setdefault(R.hour_of(received_us), [0, 0])
        cell[0] += 1
        cell[1] = max(cell[1], received_us)

    def _purge_usage(self, cut_s: int) -> None:
        for table in (self._usage, self._name_hist, self._error_rollup):
            for key in [k for k in table if k[1] + k[0] <= cut_s]:
                del table[key]
        self._install_days = {row for row in self._install_days if row[0] + R.DAY > cut_s}

    def usage(self, flt: T.UsageFilter, group_by, bucket=None) -> list[T.UsageGroup]:
        if set(group_by) - set(U.USAGE_KEYS) or bucket not in (None, R.HOUR, R.DAY):
            raise ValueError(f"cannot group usage by {group_by} / bucket {bucket}")
        blocks = R.cover(*R.hour_range(flt.range), (R.HOUR,) if bucket == R.HOUR else U.LEVELS)
        checks = [(U.USAGE_KEYS.index(col), value) for col, value in flt.fields()]
        positions = [U.USAGE_KEYS.index(col) for col in group_by]
        sums: dict[tuple, list] = {}
        with self._lock:
            for (level, start, *key), v in self._usage.items():
                if not _covered(level, start, blocks) or any(key[i] != value for i, value in checks):
                    continue
                group = (start - start % bucket if bucket else None, *(key[i] for i in positions))
                old = sums.get(group)
                sums[group] = list(v) if old is None else [
                    *(a + b for a, b in zip(old[:4], v[:4], strict=True)), max(old[4], v[4])]
        return T.ordered([T.usage_group(g[1:], g[0], *v) for g, v in sums.items()])

    def name_percentiles(self, flt: T.UsageFilter, qs) -> dict[tuple[str, str], list]:
        blocks = R.cover(*R.hour_range(flt.range))
        blobs: dict[tuple[str, str], list[bytes]] = {}
        with self._lock:
            for (level, start, category, name), blob in self._name_hist.items():
                if _covered(level, start, blocks) and flt.category in (None, category) \
                        and flt.name in (None, name):
                    blobs.setdefault((category, name), []).append(blob)
        return {key: histogram.percentiles(found, qs) for key, found in sorted(blobs.items())}

    def install_counts(self, flt: T.UsageFilter, group_by, by_day) -> list[T.InstallCount]:
        if group_by not in (None, *T.INSTALL_KEYS):
            raise ValueError(f"cannot count installs by {group_by!r}")
        lo, hi = T.day_range(flt.range)
        checks = [(T.INSTALL_KEYS.index(col), value) for col, value in flt.fields(T.INSTALL_KEYS)]
        installs: dict[tuple, set] = {}
        with self._lock:
            for day, gid, *platform in self._install_days:
                if _in(day, lo, hi) and all(platform[i] == value for i, value in checks):
                    key = platform[T.INSTALL_KEYS.index(group_by)] if group_by else None
                    installs.setdefault((key, day if by_day else None), set()).add(gid)
        out = [T.InstallCount(key=k, day=d, installs=len(ids)) for (k, d), ids in installs.items()]
        return sorted(out, key=lambda c: (c.day or 0, c.key or ""))

    def error_groups(self, flt: T.UsageFilter, limit: int) -> list[RecentError]:
        blocks = R.cover(*R.hour_range(flt.range))
        rows: dict[tuple, list] = {}
        with self._lock:
            for (level, start, *key), (n, first, last) in self._error_rollup.items():
                if _covered(level, start, blocks) and flt.category in (None, key[2]) \
                        and flt.name in (None, key[3]):
                    old = rows.get(tuple(key))
                    rows[tuple(key)] = [n, first, last] if old is None else [
                        old[0] + n, min(old[1], first), max(old[2], last)]
            types = dict(self._error_types)
        groups = T.merge_error_rows([(*k, *v) for k, v in rows.items()], limit)
        return T.with_types(groups, types)

    def uploads(self, rng: TimeRange) -> tuple[int, str | None]:
        lo, hi = R.hour_range(rng)
        with self._lock:
            cells = [v for hour, v in self._upload_hours.items() if _in(hour, lo, hi)]
        last = max((v[1] for v in cells), default=0)
        return sum(v[0] for v in cells), R.us_to_text(last) if last else None
