"""Query-string parsing for the read endpoints: every bad value is a 400
`bad_parameter` that names the parameter (never a 500, never ignored).

A parameter an endpoint does not take (`/events?limit=2`, a typo of
`per_page`) is refused the same way, before the view runs: the parameters
each endpoint takes are the ones the OpenAPI document lists for it, so the
document and the check cannot disagree."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from datetime import datetime

from branchpy_telemetry.backend.errors import BadParameterError
from branchpy_telemetry.backend.sinks.base import TimeRange
from branchpy_telemetry.client.contracts.errors import UsageError
from branchpy_telemetry.client.contracts.timewindow import parse_duration, parse_time

MAX_TEXT_PARAM = 200
# `from` / `to`: a window back from now (a number and a unit) or an RFC 3339 date-time
# (the OpenAPI document publishes these patterns).
WINDOW_REGEX = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h|d|w)$"
RFC3339_REGEX = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
                 r"([Zz]|[+-][0-9]{2}:[0-9]{2})$")
WINDOW_PATTERN = re.compile(WINDOW_REGEX)
PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")  # an unknown parameter is named only if plain
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


def init_parameter_check(app, api_prefix: str) -> None:
    """Refuse, under `api_prefix`, every query parameter the OpenAPI document does not list
    for the route (400 `bad_parameter` naming it)."""
    from flask import request

    def reject_unknown_parameters() -> None:
        rule = request.url_rule
        if rule is None or not rule.rule.startswith(api_prefix) or not request.args:
            return
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule[len(api_prefix):])  # OpenAPI's form
        allowed = accepted_parameters(path, request.method.lower())
        for name in request.args:
            if name not in allowed:
                takes = ", ".join(sorted(allowed)) or "no query parameters"
                shown = name if PLAIN_NAME.fullmatch(name) else "(a name that is not a plain word)"
                raise BadParameterError(shown, "this endpoint does not take it", hint=f"it takes {takes}")

    app.before_request(reject_unknown_parameters)


def accepted_parameters(path: str, method: str) -> frozenset[str]:
    """The query parameters the OpenAPI document lists for `method path` (HEAD as GET)."""
    return _parameters_by_route().get((path, "get" if method == "head" else method), frozenset())


@functools.cache
def _parameters_by_route() -> dict[tuple[str, str], frozenset[str]]:
    from branchpy_telemetry.backend.openapi import build_openapi

    return {(path, method): frozenset(p["name"] for p in op.get("parameters", []) if p.get("in") == "query")
            for path, operations in build_openapi()["paths"].items() for method, op in operations.items()}
