"""`GET /dashboard`: one static page; it asks for a read key in the browser
and sends it with every data call (the page itself needs none). Its icon is
served here too (`/favicon.ico`, an SVG: every current browser takes one)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, send_from_directory

bp = Blueprint("dashboard", __name__)
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
                    "Referrer-Policy": "no-referrer"}


@bp.get("/dashboard")
def dashboard():
    response = render_template("dashboard.html", api_base="/api/telemetry")
    return response, 200, {"Cache-Control": "no-store", **SECURITY_HEADERS}


@bp.get("/favicon.ico")
def favicon():
    response = send_from_directory(current_app.static_folder, "favicon.svg", mimetype="image/svg+xml",
                                   max_age=86400)
    response.headers.update(SECURITY_HEADERS)
    return response
