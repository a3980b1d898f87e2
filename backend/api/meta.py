"""`GET /health` (no auth), `GET /schema`, `GET /catalog`, `GET /openapi.json`."""

from __future__ import annotations

import msgspec
import structlog
from flask import Blueprint

from branchpy_telemetry.client.catalog import describe_catalog
from branchpy_telemetry.client.schema import SUPPORTED_SCHEMA_VERSIONS, package_json_schema
from branchpy_telemetry.client.timewindow import utcnow

from ..context import current_context, respond
from ..openapi import build_openapi
from ..sinks.base import Sink, SinkHealth

bp = Blueprint("meta", __name__)
log = structlog.get_logger("backend.health")


class HealthReport(msgspec.Struct, kw_only=True):
    status: str  # "ok" | "degraded" (a secondary is down) | "unavailable" (the primary is down)
    sinks: dict[str, SinkHealth]
    max_upload_bytes: int
    schema_versions: list[str]


@bp.get("/health")
def health():
    ctx = current_context()
    primary, members = sink_health(ctx.sink)
    if not primary.ok:
        status = "unavailable"
    elif all(h.ok for h in members.values()):
        status = "ok"
    else:
        status = "degraded"
    report = HealthReport(status=status, sinks=members, max_upload_bytes=ctx.settings.max_upload_bytes,
                          schema_versions=list(SUPPORTED_SCHEMA_VERSIONS))
    return respond(report, 200 if primary.ok else 503)


def sink_health(sink: Sink) -> tuple[SinkHealth, dict[str, SinkHealth]]:
    """(the primary's health, every member's health by name). A sink that raises is down.
    A CompositeSink reports its members (primary first) through `member_health()`."""
    members = getattr(sink, "member_health", None)
    try:
        if callable(members):
            report = dict(members())
            return next(iter(report.values())), report
        primary = sink.health()
    except Exception as exc:  # a readiness probe must answer, whatever the sink does
        log.warning("health.sink_failed", error=str(exc))
        primary = SinkHealth(ok=False, kind=sink.kind, detail=type(exc).__name__)
    return primary, {sink.kind: primary}


@bp.get("/schema")
def schema():
    current_context().authorize("read", current_context().query_limiter)
    return respond(package_json_schema())


@bp.get("/catalog")
def catalog():
    """The event catalog this server stores by: names, descriptions, attrs, expiry (no file path)."""
    ctx = current_context()
    ctx.authorize("read", ctx.query_limiter)
    return respond(describe_catalog(ctx.catalog, utcnow().date(), with_source=False))


@bp.get("/openapi.json")
def openapi():
    current_context().authorize("read", current_context().query_limiter)
    return respond(build_openapi())
