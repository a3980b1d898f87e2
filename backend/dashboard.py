"""`GET /dashboard`: one static page; it asks for a read key in the browser
and sends it with every data call (the page itself needs none)."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("dashboard", __name__)


@bp.get("/dashboard")
def dashboard():
    response = render_template("dashboard.html", api_base="/api/telemetry")
    return response, 200, {"Cache-Control": "no-store",
                           "Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
                           "Referrer-Policy": "no-referrer"}
