"""The dashboard's breakdowns, maintained at ingest beside rollups.py.

Each stored package also updates, in the same transaction,

- `usage_rollup`: per block of time (a day, 6 hours and an hour, as the
  duration histograms: `rollups.cover` reads whole days in the middle of a
  range and smaller blocks only at its edges) and per (category, name,
  source, branchpy_version, OS, Python): events, errors, events with a
  status, and the count and maximum of durations. Every filter of the
  dashboard (category, source, command, version) and every breakdown (per
  command, per version, per platform, the timeline) is a sum over its rows;
- `name_hist`: a duration histogram (histogram.py) per block and command,
  for each command's p50 and p95;
- `error_rollup`: per block, error group (error_hash), error code and
  command: count, first and last sighting; `error_types` names the
  exception type of a group once (the type is part of what the hash is of,
  so a group has one);
- `install_days`: which install sent which version, OS and Python on which
  day (distinct counts cannot be summed over blocks, so installs are counted
  over the whole UTC days a range overlaps);
- `upload_hour`: packages received per hour, and the latest receipt.

The rows of a package are keyed by its own version and platform: an event
carries no version, the package that first delivered it does.

Precision: as for rollups.py, a range counts every hour it overlaps; installs
count every day it overlaps.
"""

from __future__ import annotations

import msgspec

from branchpy_telemetry.backend.sinks import histogram
from branchpy_telemetry.backend.sinks import rollups as R

DAY = R.DAY
LEVELS = R.HIST_LEVELS
# usage_rollup columns: its key after (level, start), then what it adds up
USAGE_KEYS = ("category", "name", "source", "version", "os", "python")
USAGE_SUMS = ("events", "errors", "with_status", "dur_n")
ERROR_KEYS = ("error_hash", "error_code", "category", "name")


class PackageContext(msgspec.Struct, frozen=True):
    """What a package says of every event in it."""
    version: str
    os: str
    python: str
    governance_id: str


class UsageDeltas(msgspec.Struct):
    usage: dict  # (level, start, category, name, source) -> [events, errors, with_status, dur_n, dur_max]
    name_hist: dict  # (level, start, category, name) -> {bucket: count}
    errors: dict  # (level, start, error_hash, error_code, category, name) -> [count, first_us, last_us]
    days: set  # day starts (epoch seconds) the new events fall on


def compute_usage(rows: list[R.EventRow]) -> UsageDeltas:
    """Per hour first (one pass over the events), then every hour is added into its blocks."""
    hourly: dict = {}
    hist: dict = {}
    errors: dict = {}
    days: set = set()
    for _eid, _, _, ts_us, cat, src, name, dur, status, _, _, code, ehash, _, _ in rows:
        hour = R.hour_of(ts_us)
        cell = hourly.get((hour, cat, name, src))
        if cell is None:
            cell = hourly[(hour, cat, name, src)] = [0, 0, 0, 0, 0.0]
            days.add(hour - hour % DAY)
        cell[0] += 1
        if status == "error":
            cell[1] += 1
        if status:
            cell[2] += 1
        if dur is not None:
            cell[3] += 1
            if dur > cell[4]:
                cell[4] = dur
            counts = hist.setdefault((hour, cat, name), {})
            bucket = histogram.bucket_of(dur)
            counts[bucket] = counts.get(bucket, 0) + 1
        if ehash:
            key = (hour, ehash, code or "", cat, name)
            e = errors.get(key)
            if e is None:
                errors[key] = [1, ts_us, ts_us]
            else:
                e[0] += 1
                e[1] = min(e[1], ts_us)
                e[2] = max(e[2], ts_us)
    return UsageDeltas(_blocks(hourly, _add_usage), _blocks(hist, _add_counts), _blocks(errors, _add_error),
                       days)


def _blocks(hourly: dict, add) -> dict:
    out: dict = {}
    for (hour, *rest), value in hourly.items():
        for level in LEVELS:
            key = (level, hour - hour % level, *rest)
            out[key] = add(out.get(key), value)
    return out


def _add_usage(old: list | None, new: list) -> list:
    if old is None:
        return list(new)
    return [*(a + b for a, b in zip(old[:4], new[:4], strict=True)), max(old[4], new[4])]


def _add_counts(old: dict | None, new: dict) -> dict:
    if old is None:
        return dict(new)
    for bucket, n in new.items():
        old[bucket] = old.get(bucket, 0) + n
    return old


def _add_error(old: list | None, new: list) -> list:
    if old is None:
        return list(new)
    return [old[0] + new[0], min(old[1], new[1]), max(old[2], new[2])]


def error_types(package) -> dict[str, str]:
    """error_hash -> exception type, from the package's error samples (a type only where one left)."""
    return {s.error_hash: s.error_type for s in package.errors if s.error_type}


def context_of(package) -> PackageContext:
    return PackageContext(version=package.branchpy_version, os=package.platform.os,
                          python=package.platform.python, governance_id=package.governance_id)
