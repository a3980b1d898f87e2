"""Read endpoints for the dashboard and scripts (docs/http-api.md; scope `read`)."""

from __future__ import annotations

from flask import Blueprint, request

from branchpy_telemetry.backend import breakdowns as B
from branchpy_telemetry.backend.api.filters import get_usage_filter, narrowed
from branchpy_telemetry.backend.api.params import get_choice, get_int, get_range, get_text, get_time
from branchpy_telemetry.backend.context import current_context, respond
from branchpy_telemetry.backend.sinks import rollups as R
from branchpy_telemetry.backend.sinks.base import EventFilter, KeyCount
from branchpy_telemetry.backend.slo import command_slos, compute_slo
from branchpy_telemetry.client.contracts.event import CATEGORIES, SOURCES
from branchpy_telemetry.client.contracts.timewindow import utcnow

bp = Blueprint("queries", __name__)

# Paging and choices of the query parameters (the OpenAPI document states these same values).
MAX_PER_PAGE = 500  # rows of one page (`per_page`), and the most `limit` may ask for
MAX_PAGE = 1_000_000
EVENTS_PER_PAGE = 50  # `per_page` when not given
RECENT_ERRORS_LIMIT = 20  # `limit` of /errors/recent when not given
SESSIONS_LIMIT = 50  # `limit` of /sessions when not given
TIMELINE_BUCKETS: tuple[str, ...] = ("hour", "day")  # the first is the default


@bp.get("/stats")
def stats():
    sink = current_context().sink
    if not narrowed(request.args):
        return respond(sink.stats())
    return respond(B.stats_in_range(sink, get_usage_filter(request.args, utcnow())))


@bp.get("/events")
def events():
    ctx = current_context()
    args = request.args
    rng = get_range(args, utcnow())
    flt = EventFilter(
        category=get_choice(args, "category", CATEGORIES),
        source=get_choice(args, "source", SOURCES),
        name=get_text(args, "name"),
        status=get_text(args, "status"),
        session_id=get_text(args, "session_id"),
        error_hash=get_text(args, "error_hash"),
        start=rng.start,
        end=rng.end,
    )
    page = get_int(args, "page", 1, 1, MAX_PAGE)
    per_page = get_int(args, "per_page", EVENTS_PER_PAGE, 1, MAX_PER_PAGE)
    return respond(ctx.sink.list_events(flt, page, per_page))


def _key_counts(dimension: str):
    sink, flt = current_context().sink, get_usage_filter(request.args, utcnow())
    if not flt.has_fields:
        return respond(sink.aggregate(dimension, flt.range))
    return respond([KeyCount(key=g.key[0], count=g.events)
                    for g in sorted(sink.usage(flt, (dimension,)), key=lambda g: (-g.events, g.key))])


@bp.get("/aggregate/category")
def aggregate_category():
    return _key_counts("category")


@bp.get("/aggregate/source")
def aggregate_source():
    return _key_counts("source")


@bp.get("/aggregate/timeline")
def aggregate_timeline():
    sink, flt = current_context().sink, get_usage_filter(request.args, utcnow())
    bucket = get_choice(request.args, "bucket", TIMELINE_BUCKETS, default=TIMELINE_BUCKETS[0])
    if not flt.has_fields:
        return respond(sink.timeline(bucket, flt.range))
    return respond(B.filtered_timeline(sink, flt, {"hour": R.HOUR, "day": R.DAY}[bucket]))


@bp.get("/aggregate/name")
def aggregate_name():
    now = utcnow()
    return respond(B.name_report(current_context().sink, get_usage_filter(request.args, now), now))


@bp.get("/aggregate/version")
def aggregate_version():
    return respond(B.key_usage(current_context().sink, get_usage_filter(request.args, utcnow()), "version"))


@bp.get("/aggregate/version/timeline")
def aggregate_version_timeline():
    return respond(B.version_days(current_context().sink, get_usage_filter(request.args, utcnow())))


@bp.get("/aggregate/platform")
def aggregate_platform():
    return respond(B.platform_report(current_context().sink, get_usage_filter(request.args, utcnow())))


@bp.get("/errors/recent")
def errors_recent():
    sink = current_context().sink
    limit = get_int(request.args, "limit", RECENT_ERRORS_LIMIT, 1, MAX_PER_PAGE)
    if not narrowed(request.args):
        return respond(sink.recent_errors(limit))
    return respond(sink.error_groups(get_usage_filter(request.args, utcnow()), limit))


@bp.get("/errors/slo")
def errors_slo():
    ctx = current_context()
    now = utcnow()
    settings = ctx.settings
    end = get_time(request.args, "to", now) or now  # without `from`: the window that ends at `to`
    flt = get_usage_filter(request.args, now, default_from=end - settings.slo_window_delta)
    summary = ctx.sink.latency_summary(flt.range)
    report = compute_slo(summary, flt.range, now, settings.slo_success_target, settings.slo_p95_target_ms)
    report.commands = command_slos(ctx.sink, flt, settings.slo_success_target, settings.slo_p95_targets,
                                   settings.slo_p95_target_ms)
    return respond(report)


@bp.get("/sessions")
def sessions():
    ctx = current_context()
    limit = get_int(request.args, "limit", SESSIONS_LIMIT, 1, MAX_PER_PAGE)
    return respond(ctx.sink.sessions(get_range(request.args, utcnow()), limit))
