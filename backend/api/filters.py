"""The dashboard's filters in a query string: `from`, `to`, `category`, `source`, `name`
(a command or feature), `version`, `os`, `python`. Bad values are a 400 naming the parameter
(params.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from branchpy_telemetry.backend.api.params import get_choice, get_range, get_text
from branchpy_telemetry.backend.sinks.usage_types import UsageFilter
from branchpy_telemetry.client.contracts.event import CATEGORIES, SOURCES

FIELD_PARAMS = ("category", "source", "name", "version", "os", "python")


def get_usage_filter(args: Mapping[str, str], now: datetime,
                     default_from: datetime | None = None) -> UsageFilter:
    rng = get_range(args, now, default_from=default_from)
    return UsageFilter(start=rng.start, end=rng.end, category=get_choice(args, "category", CATEGORIES),
                       source=get_choice(args, "source", SOURCES), name=get_text(args, "name"),
                       version=get_text(args, "version"), os=get_text(args, "os"),
                       python=get_text(args, "python"))


def narrowed(args: Mapping[str, str]) -> bool:
    """A request asking for a range or a filter (else the all-time answers stay as they were)."""
    return any(args.get(p) for p in ("from", "to", *FIELD_PARAMS))
