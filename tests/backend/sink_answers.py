"""Every query a sink answers, over a fixed set of ranges and filters: what the
agreement and migration tests compare between sinks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from branchpy_telemetry.backend.sinks import rollups as R
from branchpy_telemetry.backend.sinks.base import EventFilter, TimeRange
from branchpy_telemetry.backend.sinks.usage_types import UsageFilter

from .conftest import BASE_TS, session_id_for

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
RANGES = {
    "all": TimeRange(),
    "partial-days": TimeRange(start=BASE_TS + timedelta(hours=5, minutes=17),
                              end=BASE_TS + timedelta(days=2, hours=3, minutes=1)),
    "whole-days": TimeRange(start=datetime(2026, 11, 21, tzinfo=UTC), end=datetime(2026, 11, 22, tzinfo=UTC)),
    "open-end": TimeRange(start=BASE_TS + timedelta(days=1, minutes=30)),
    "open-start": TimeRange(end=BASE_TS + timedelta(hours=20)),
    "empty": TimeRange(start=NOW + timedelta(days=30)),
}


# The dashboard's filters (usage_types.UsageFilter), each tried over every range.
USAGE_FILTERS = ({}, {"category": "command"}, {"name": "analyze", "source": "cli"}, {"version": "1.4.0"},
                 {"name": "lint", "version": "9.9.9"}, {"os": "linux"})
GROUPS = (("name",), ("category", "name"), ("source",), ("version",), ("os",), ())


def usage_answers(sink, python: bool = True) -> dict:
    """The breakdown queries (usage.py). `python=False` leaves out what depends on the packages'
    Python (a database migrated from before it was stored says "" there)."""
    out: dict = {}
    groups = GROUPS + ((("python",),) if python else ())
    for name, rng in RANGES.items():
        for fields in USAGE_FILTERS:
            flt = UsageFilter(start=rng.start, end=rng.end, **fields)
            tag = f"{name}-{fields}"
            for group_by in groups:
                out[f"usage-{tag}-{group_by}"] = sink.usage(flt, group_by)
            out[f"usage-{tag}-hour"] = sink.usage(flt, ("name",), R.HOUR)
            out[f"usage-{tag}-day"] = sink.usage(flt, ("version",), R.DAY)
            percentiles = sink.name_percentiles(flt, (0.5, 0.95))
            out[f"percentiles-{tag}"] = {"/".join(k): v for k, v in percentiles.items()}
            out[f"error-groups-{tag}"] = sink.error_groups(flt, 7)
            for key in ("version", "os", *(("python",) if python else ()), None):
                if python or "python" not in fields:
                    out[f"installs-{tag}-{key}"] = sink.install_counts(flt, key, False)
            out[f"installs-{tag}-daily"] = sink.install_counts(flt, "version", True)
        out[f"uploads-{name}"] = sink.uploads(rng)
    return out


def answers(sink, python: bool = True) -> dict:
    out: dict = {"stats": sink.stats(), "errors": sink.recent_errors(50), **usage_answers(sink, python)}
    for name, rng in RANGES.items():
        out[f"aggregate-category-{name}"] = sink.aggregate("category", rng)
        out[f"aggregate-source-{name}"] = sink.aggregate("source", rng)
        out[f"timeline-hour-{name}"] = sink.timeline("hour", rng)
        out[f"timeline-day-{name}"] = sink.timeline("day", rng)
        out[f"latency-{name}"] = sink.latency_summary(rng)
        out[f"sessions-{name}"] = sink.sessions(rng, 25)
    for flt in (EventFilter(), EventFilter(status="error"), EventFilter(category="feature", source="cli"),
                EventFilter(session_id=session_id_for(2, 3), start=BASE_TS + timedelta(hours=23))):
        for page in (1, 4):
            out[f"events-{flt}-{page}"] = sink.list_events(flt, page, 37)
    out.update(listing_totals(sink))
    return msgspec.to_builtins(out)


# Filters whose listing total sums whole hours from a rollup (event_count.py), and one that cannot.
COUNTED_FILTERS = ({}, {"status": "error"}, {"category": "feature"}, {"source": "cli"}, {"status": "ok"},
                   {"category": "nonexistent"})


def listing_totals(sink) -> dict[str, int]:
    """The listing total for every counted filter over every range (and a few odd ones)."""
    ranges = {**RANGES,
              "within-one-hour": TimeRange(start=BASE_TS + timedelta(hours=5, minutes=1),
                                           end=BASE_TS + timedelta(hours=5, minutes=59)),
              "two-partial-hours": TimeRange(start=BASE_TS + timedelta(hours=5, minutes=59),
                                             end=BASE_TS + timedelta(hours=6, minutes=2)),
              "hour-aligned": TimeRange(start=BASE_TS + timedelta(hours=3),
                                        end=BASE_TS + timedelta(hours=30)),
              "reversed": TimeRange(start=BASE_TS + timedelta(hours=30), end=BASE_TS + timedelta(hours=3))}
    out = {}
    for fields in COUNTED_FILTERS:
        for name, rng in ranges.items():
            flt = EventFilter(start=rng.start, end=rng.end, **fields)
            out[f"total-{fields}-{name}"] = sink.list_events(flt, 1, 1).total
    return out
