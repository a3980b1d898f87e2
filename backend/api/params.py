"""Query-string parsing for the read endpoints: every bad value is a 400
`bad_parameter` that names the parameter (never a 500, never ignored)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime

from branchpy_telemetry.client.errors import UsageError
from branchpy_telemetry.client.timewindow import parse_duration, parse_time

from ..errors import BadParameterError
from ..sinks.base import TimeRange

MAX_TEXT_PARAM = 200
# `from` / `to`: a window back from now (a number and a unit) or an RFC 3339 date-time
# (the OpenAPI document publishes these patterns).
WINDOW_REGEX = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h|d|w)$"
RFC3339_REGEX = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
                 r"([Zz]|[+-][0-9]{2}:[0-9]{2})$")
WINDOW_PATTERN = re.compile(WINDOW_REGEX)
RFC3339_PATTERN = re.compile(RFC3339_REGEX)


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
    """A window back from now (`24h`, `7d`) or an RFC 3339 date-time (with `Z` or an
    offset): exactly what the OpenAPI document says."""
    raw = get_text(args, name)
    if raw is None:
        return None
    try:
        if WINDOW_PATTERN.fullmatch(raw):
            return now - parse_duration(raw)
        if RFC3339_PATTERN.fullmatch(raw):
            return parse_time(raw.upper())  # RFC 3339 allows a lower-case t and z
    except (UsageError, ValueError, OverflowError):
        pass
    raise BadParameterError(name, "must be a window like 24h or 7d, or an RFC 3339 date-time",
                            hint="e.g. from=24h or from=2026-11-28T00:00:00Z")


def get_range(args: Mapping[str, str], now: datetime, default_from: datetime | None = None) -> TimeRange:
    start = get_time(args, "from", now) or default_from
    end = get_time(args, "to", now)
    if start is not None and end is not None and start > end:
        raise BadParameterError("from", "is after 'to'")
    return TimeRange(start=start, end=end)
