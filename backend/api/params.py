"""Query-string parsing for the read endpoints: every bad value is a 400
`bad_parameter` that names the parameter (never a 500, never ignored)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from branchpy_telemetry.client.errors import UsageError
from branchpy_telemetry.client.timewindow import parse_window_start

from ..errors import BadParameterError
from ..sinks.base import TimeRange

MAX_TEXT_PARAM = 200


def get_int(args: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadParameterError(name, "must be an integer", hint=f"use {lo}..{hi}") from None
    if not lo <= value <= hi:
        raise BadParameterError(name, f"must be between {lo} and {hi}")
    return value


def get_text(args: Mapping[str, str], name: str) -> str | None:
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_TEXT_PARAM:
        raise BadParameterError(name, f"longer than {MAX_TEXT_PARAM} characters")
    if "\x00" in raw:
        raise BadParameterError(name, "contains a NUL character")
    return raw


def get_choice(args: Mapping[str, str], name: str, choices: Iterable[str], default: str | None = None
               ) -> str | None:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    allowed = tuple(choices)
    if raw not in allowed:
        raise BadParameterError(name, f"must be one of {', '.join(allowed)}")
    return raw


def get_time(args: Mapping[str, str], name: str, now: datetime) -> datetime | None:
    """A window back from now (`24h`, `7d`) or an ISO-8601 time."""
    raw = get_text(args, name)
    if raw is None:
        return None
    try:
        return parse_window_start(raw, now)
    except (UsageError, ValueError, OverflowError):
        raise BadParameterError(name, "must be a window like 24h or 7d, or an ISO-8601 time",
                                hint="e.g. from=24h or from=2026-11-28T00:00:00Z") from None


def get_range(args: Mapping[str, str], now: datetime, default_from: datetime | None = None) -> TimeRange:
    start = get_time(args, "from", now) or default_from
    end = get_time(args, "to", now)
    if start is not None and end is not None and start > end:
        raise BadParameterError("from", "is after 'to'")
    return TimeRange(start=start, end=end)
