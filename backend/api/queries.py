"""Read endpoints for the dashboard and scripts (DESIGN §10; scope `read`)."""

from __future__ import annotations

import msgspec
from flask import Blueprint, request

from branchpy_telemetry.client.event import CATEGORIES, SOURCES
from branchpy_telemetry.client.timewindow import format_ts, utcnow

from ..context import current_context, respond
from ..sinks.base import EventFilter, LatencySummary, TimeRange
from .params import get_choice, get_int, get_range, get_text

bp = Blueprint("queries", __name__)

MAX_PER_PAGE = 500


class SloReport(msgspec.Struct, kw_only=True):
    window_from: str
    window_to: str
    total: int
    errors: int
    success_rate: float | None  # None when no event in the window had a status
    success_target: float
    success_met: bool
    error_budget_remaining: float  # fraction of the budget left (1 = untouched, < 0 = overspent)
    burn_rate: float  # observed error rate / allowed error rate (1 = exactly on budget)
    p95_ms: float | None
    p95_target_ms: float
    latency_met: bool


@bp.get("/stats")
def stats():
    return respond(current_context().sink.stats())


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
        start=rng.start,
        end=rng.end,
    )
    page = get_int(args, "page", 1, 1, 1_000_000)
    per_page = get_int(args, "per_page", 50, 1, MAX_PER_PAGE)
    return respond(ctx.sink.list_events(flt, page, per_page))


@bp.get("/aggregate/category")
def aggregate_category():
    ctx = current_context()
    return respond(ctx.sink.aggregate("category", get_range(request.args, utcnow())))


@bp.get("/aggregate/source")
def aggregate_source():
    ctx = current_context()
    return respond(ctx.sink.aggregate("source", get_range(request.args, utcnow())))


@bp.get("/aggregate/timeline")
def aggregate_timeline():
    ctx = current_context()
    bucket = get_choice(request.args, "bucket", ("hour", "day"), default="hour")
    return respond(ctx.sink.timeline(bucket, get_range(request.args, utcnow())))


@bp.get("/errors/recent")
def errors_recent():
    ctx = current_context()
    return respond(ctx.sink.recent_errors(get_int(request.args, "limit", 20, 1, MAX_PER_PAGE)))


@bp.get("/errors/slo")
def errors_slo():
    ctx = current_context()
    now = utcnow()
    settings = ctx.settings
    rng = get_range(request.args, now, default_from=now - settings.slo_window_delta)
    summary = ctx.sink.latency_summary(rng)
    return respond(compute_slo(summary, rng, now, settings.slo_success_target, settings.slo_p95_target_ms))


@bp.get("/sessions")
def sessions():
    ctx = current_context()
    limit = get_int(request.args, "limit", 50, 1, MAX_PER_PAGE)
    return respond(ctx.sink.sessions(get_range(request.args, utcnow()), limit))


def compute_slo(summary: LatencySummary, rng: TimeRange, now, success_target: float,
                p95_target_ms: float) -> SloReport:
    """Success rate vs target, error budget left and burn rate, p95 vs target."""
    allowed_error_rate = 1.0 - success_target
    if summary.total:
        error_rate = summary.errors / summary.total
        success_rate: float | None = 1.0 - error_rate
    else:
        error_rate, success_rate = 0.0, None
    burn_rate = error_rate / allowed_error_rate
    return SloReport(
        window_from=format_ts(rng.start) if rng.start else "",
        window_to=format_ts(rng.end or now),
        total=summary.total,
        errors=summary.errors,
        success_rate=success_rate,
        success_target=success_target,
        success_met=success_rate is None or success_rate >= success_target,
        error_budget_remaining=round(1.0 - burn_rate, 6),
        burn_rate=round(burn_rate, 6),
        p95_ms=summary.p95_ms,
        p95_target_ms=p95_target_ms,
        latency_met=summary.p95_ms is None or summary.p95_ms <= p95_target_ms,
    )
