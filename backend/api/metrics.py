"""`GET /metrics`: counters for an operator's scraper (Prometheus text format; a read or admin key)."""

from __future__ import annotations

from flask import Blueprint, Response

from branchpy_telemetry.backend.context import current_context
from branchpy_telemetry.backend.metrics_text import CONTENT_TYPE, render_metrics

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    return Response(render_metrics(current_context().sink), status=200, content_type=CONTENT_TYPE)
