"""`create_app(settings, sink=None)`: the Flask application factory (flaskr-style).

One blueprint per concern under `/api/telemetry` (upload, queries, meta, metrics) plus
the dashboard page. `sink` is injected by tests and by `serve`; when absent
it is opened from `settings.db_urls` through the sink registry.
"""

from __future__ import annotations

import time
from pathlib import Path

import structlog
from flask import Flask, g, request

from branchpy_telemetry.backend.access import init_access
from branchpy_telemetry.backend.api import meta, metrics, queries, upload
from branchpy_telemetry.backend.api.params import init_parameter_check
from branchpy_telemetry.backend.context import EXTENSION_NAME, BackendContext
from branchpy_telemetry.backend.dashboard import bp as dashboard_bp
from branchpy_telemetry.backend.errors import register_error_handlers
from branchpy_telemetry.backend.settings import BackendSettings
from branchpy_telemetry.backend.sinks.base import Sink

API_PREFIX = "/api/telemetry"
PACKAGE_DIR = Path(__file__).resolve().parent
access_log = structlog.get_logger("backend.access")


def create_app(settings: BackendSettings | None = None, sink: Sink | None = None) -> Flask:
    settings = settings or BackendSettings()
    if sink is None:
        sink = open_configured_sink(settings)
    # root_path/instance_path given explicitly: Flask cannot locate a package inside a
    # namespace package installed through a package-dir mapping.
    app = Flask(__name__.rsplit(".", 1)[0], root_path=str(PACKAGE_DIR),
                instance_path=str(PACKAGE_DIR / "instance"),
                static_folder="static", template_folder="templates")
    app.json.sort_keys = False
    app.extensions[EXTENSION_NAME] = BackendContext.build(settings, sink)
    register_error_handlers(app)
    app.register_blueprint(upload.bp, url_prefix=API_PREFIX)
    app.register_blueprint(queries.bp, url_prefix=API_PREFIX)
    app.register_blueprint(meta.bp, url_prefix=API_PREFIX)
    app.register_blueprint(metrics.bp, url_prefix=API_PREFIX)
    app.register_blueprint(dashboard_bp)
    init_access_log(app)
    init_access(app)
    init_parameter_check(app, API_PREFIX)  # after the key check: a caller without a key learns nothing
    return app


def open_configured_sink(settings: BackendSettings) -> Sink:
    from branchpy_telemetry.backend.sinks.members import configure_writes
    from branchpy_telemetry.backend.sinks.registry import DEFAULT_DB_URL, open_sinks

    sink = open_sinks(settings.db_urls or [DEFAULT_DB_URL], backlog_path=settings.secondary_backlog)
    configure_writes(sink, shards=settings.write_shards, retry_deadline_s=settings.write_retry_deadline_s)
    return sink


def init_access_log(app: Flask) -> None:
    @app.before_request
    def _start_timer():
        g.started = time.perf_counter()
        structlog.contextvars.clear_contextvars()

    @app.after_request
    def _log_request(response):
        elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        access_log.info("http.request", method=request.method, path=request.path,
                        status=response.status_code, duration_ms=round(elapsed, 2),
                        bytes_in=request.content_length, key_id=g.get("key_id"))
        return response
