"""Who may call what. Every endpoint needs an API key unless it is listed in
PUBLIC_ENDPOINTS; the check runs before any view (`require_key`), so a view
cannot forget it.

The scope an endpoint needs comes from its blueprint (SCOPE_BY_BLUEPRINT);
an endpoint of a blueprint not listed there needs `admin` (fail closed).
"""

from __future__ import annotations

from flask import Flask, request

from branchpy_telemetry.backend.context import current_context

# endpoint -> why it is public
PUBLIC_ENDPOINTS: dict[str, str] = {
    "meta.health": "readiness probe for load balancers; answers sink kinds and states only",
    "dashboard.dashboard": "the page holds no data; every data call it makes sends a read key",
    "dashboard.favicon": "the dashboard page's icon",
    "static": "the dashboard page's scripts, stylesheet and icon",
}

SCOPE_BY_BLUEPRINT: dict[str, str] = {
    "upload": "ingest",
    "queries": "read",
    "meta": "read",  # /schema, /catalog and /openapi.json (/health is public)
    "metrics": "read",  # Prometheus text for the operator's scraper
}
DEFAULT_SCOPE = "admin"


def required_scope(endpoint: str) -> str | None:
    """None for a public endpoint, else the scope a key needs."""
    if endpoint in PUBLIC_ENDPOINTS:
        return None
    blueprint = endpoint.rpartition(".")[0]
    return SCOPE_BY_BLUEPRINT.get(blueprint, DEFAULT_SCOPE)


def init_access(app: Flask) -> None:
    app.before_request(require_key)


def require_key() -> None:
    """401/403/429 before the view runs; unknown URLs and methods fall through to 404/405."""
    if request.routing_exception is not None or request.endpoint is None:
        return
    scope = required_scope(request.endpoint)
    if scope is None:
        return
    ctx = current_context()
    ctx.authorize(scope, ctx.upload_limiter if scope == "ingest" else ctx.query_limiter)
