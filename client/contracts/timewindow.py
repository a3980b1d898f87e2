"""Durations (`30m`, `24h`, `7d`, `10s`) and export windows (a duration or ISO-8601)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from branchpy_telemetry.client.contracts.errors import UsageError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`"6h"` -> timedelta(hours=6). Raises UsageError naming the bad value."""
    match = _DURATION.match(str(text))
    if not match:
        raise UsageError(
            f"invalid duration {text!r}",
            hint="use a number and a unit: 10s, 30m, 24h, 7d",
        )
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def parse_time(text: str) -> datetime:
    """An ISO-8601 time; naive times are taken as UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"invalid time {text!r}",
            hint="use a window like 30m, 24h, 7d or an ISO-8601 time like 2026-11-28T01:00:00Z",
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_window_start(text: str, now: datetime) -> datetime:
    """`--from`: a duration back from `now`, or an absolute ISO-8601 time."""
    if _DURATION.match(str(text)):
        return now - parse_duration(text)
    return parse_time(text)


def format_ts(value: datetime) -> str:
    """The wire form of a timestamp: UTC, milliseconds, `Z`."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def utcnow() -> datetime:
    return datetime.now(UTC)
