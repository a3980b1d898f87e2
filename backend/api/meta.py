"""`GET /health` (public), `GET /schema`, `GET /catalog`, `GET /openapi.json`."""

from __future__ import annotations

import msgspec
import structlog
from flask import Blueprint

from branchpy_telemetry.backend.context import current_context, respond
from branchpy_telemetry.backend.openapi import build_openapi
from branchpy_telemetry.backend.sinks.base import HealthState, SinkHealth
from branchpy_telemetry.client.contracts.catalog import describe_catalog
from branchpy_telemetry.client.contracts.schema import SUPPORTED_SCHEMA_VERSIONS, package_json_schema
from branchpy_telemetry.client.contracts.timewindow import utcnow

bp = Blueprint("meta", __name__)
log = structlog.get_logger("backend.health")


class SinkState(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What /health says of one sink: its kind and state, never where it is or what failed."""
    ok: bool
    kind: str
    state: HealthState
    behind: int = 0  # packages a secondary has yet to receive


class HealthReport(msgspec.Struct, kw_only=True):
    status: str  # "ok" | "degraded" (a secondary is down or behind) | "unavailable" (the primary is down)
    sinks: dict[str, SinkState]
    max_upload_bytes: int
    schema_versions: list[str]


@bp.get("/health")
def health():
    ctx = current_context()
    primary, members = ctx.health_probe.check()
    for name, member in members.items():
        if not member.ok or member.behind:
            log.warning("health.sink_not_ok", sink=name, state=member.effective_state, behind=member.behind,
                        detail=member.detail)
    if not primary.ok:
        status = "unavailable"
    elif all(h.ok and not h.behind for h in members.values()):
        status = "ok"
    else:
        status = "degraded"
    report = HealthReport(status=status, sinks={name: public_state(h) for name, h in members.items()},
                          max_upload_bytes=ctx.settings.max_upload_bytes,
                          schema_versions=list(SUPPORTED_SCHEMA_VERSIONS))
    return respond(report, 200 if primary.ok else 503)


def public_state(health: SinkHealth) -> SinkState:
    return SinkState(ok=health.ok, kind=health.kind, state=health.effective_state, behind=health.behind)


@bp.get("/schema")
def schema():
    return respond(package_json_schema())


@bp.get("/catalog")
def catalog():
    """The event catalog this server stores by: names, descriptions, attrs, expiry (no file path)."""
    return respond(describe_catalog(current_context().catalog, utcnow().date(), with_source=False))


@bp.get("/openapi.json")
def openapi():
    return respond(build_openapi())
