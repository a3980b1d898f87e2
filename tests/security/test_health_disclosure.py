"""What the unauthenticated `/health` and every error body give away.

Threat: anyone who can reach the port reads `/health` (load balancers must)
or provokes errors, to learn where the data lives (paths, hosts, users,
database names) or a driver's error text, or to harvest a password.
Promise: `/health` names sink kinds and states only (and how many packages
a secondary is behind); error bodies carry our codes and messages only.
The corpus below puts secrets in every place a sink URL or error can carry them.
"""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from structlog.testing import capture_logs

from branchpy_telemetry.backend.app import create_app
from branchpy_telemetry.backend.settings import BackendSettings
from branchpy_telemetry.backend.sinks.base import SinkHealth
from branchpy_telemetry.backend.sinks.memory import MemorySink
from branchpy_telemetry.backend.sinks.registry import open_sinks

from ..backend.conftest import mysql_server_url
from ..backend.live_backend import start_sqlite_backend

SECRETS = ("pathsecret", "usersecret", "passsecret", "dbsecret", "hostsecret", "driversecret")
ALLOWED_STATES = {"ok", "down", "behind", "needs_migration"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HostileHealthSink(MemorySink):
    """A sink whose health report or failure carries a path, host, user, database and driver text."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def health(self) -> SinkHealth:
        text = ("driversecret: Access denied for user 'usersecret'@'hostsecret' (using password: YES) "
                "on /srv/pathsecret/events.db database dbsecret")
        if self.mode == "raise":
            raise sqlite3.OperationalError(text)
        return SinkHealth(ok=False, kind=self.kind, detail=text)


def sink_setups(tmp_path: Path):
    secret_dir = tmp_path / "pathsecret"
    port = closed_port()
    mysql_down = f"mysql://usersecret:passsecret@127.0.0.1:{port}/dbsecret?connect_timeout=1"
    yield "sqlite primary in a secret folder", open_sinks([f"sqlite:///{secret_dir}/events.db"])
    yield "mysql secondary refused", open_sinks([f"sqlite:///{secret_dir}/p.db", mysql_down])
    yield "sink health with secret detail", HostileHealthSink("detail")
    yield "sink health raising secret text", HostileHealthSink("raise")


def corrupt(db: Path) -> None:
    """Overwrite in place (same inode: the server's open connections see it too)."""
    size = db.stat().st_size
    with open(db, "r+b") as handle:
        handle.write((b"driversecret" * (size // 12 + 1))[:size])
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def assert_health_hides_the_secrets(name: str, sink) -> None:
    """`/health` over `sink` names kinds and states only, and no password reaches the logs."""
    try:
        client = create_app(BackendSettings(), sink).test_client()
        with capture_logs() as logs:
            body = client.get("/api/telemetry/health").get_data(as_text=True)
        for secret in SECRETS:
            assert secret not in body, (name, body)
        assert "127.0.0.1" not in body and "Can't connect" not in body, (name, body)
        report = json.loads(body)
        assert set(report) == {"status", "sinks", "max_upload_bytes", "schema_versions"}
        for member, state in report["sinks"].items():
            assert set(state) <= {"ok", "kind", "state", "behind"}, (name, state)
            assert state["state"] in ALLOWED_STATES and state["kind"] in ("sqlite", "mysql", "memory")
            assert member.split(":")[-1] == state["kind"]
        assert not any("passsecret" in str(entry) for entry in logs), name  # no password in logs either
    finally:
        sink.close()


def test_health_names_kinds_and_states_only_whatever_the_sinks_say(tmp_path):
    for name, sink in sink_setups(tmp_path):
        assert_health_hides_the_secrets(name, sink)


@pytest.mark.mysql
def test_health_hides_a_secondary_whose_server_refuses_the_login(tmp_path):
    server = urlsplit(mysql_server_url())  # a real server, so the driver's text names user and host
    address = f"{server.hostname}:{server.port or 3306}"
    denied = f"mysql://usersecret:passsecret@{address}/dbsecret?connect_timeout=2"
    sink = open_sinks([f"sqlite:///{tmp_path / 'pathsecret'}/q.db", denied])
    assert_health_hides_the_secrets("mysql secondary, access denied", sink)


def test_a_failing_primary_gives_error_bodies_without_paths_or_driver_text(tmp_path):
    server = start_sqlite_backend(tmp_path / "pathsecret")
    try:
        key = {"X-API-Key": server.keys["admin"]}
        assert requests.get(server.api + "/stats", headers=key, timeout=10).status_code == 200
        corrupt(tmp_path / "pathsecret" / "events.db")
        for path in ("/stats", "/events", "/health"):
            response = requests.get(server.api + path, headers=key, timeout=10)
            assert response.status_code == 503, (path, response.status_code)
            assert "pathsecret" not in response.text and "driversecret" not in response.text
            assert "not a database" not in response.text and "sqlite3" not in response.text
            assert path == "/health" or int(response.headers["Retry-After"]) >= 1
    finally:
        server.stop()
    assert '"event": "health.sink_not_ok"' in server.logs()  # the operator's log has the details


@pytest.mark.parametrize("header", ["X-API-Key", "Authorization"])
def test_no_error_body_echoes_a_presented_key(tmp_path, header):
    client = create_app(BackendSettings(), MemorySink()).test_client()
    key = "bpt_deadbeef_" + "S3CRETKEY" * 5
    value = f"Bearer {key}" if header == "Authorization" else key
    for path in ("/api/telemetry/stats", "/api/telemetry/upload", "/api/telemetry/nope", "/dashboard/x"):
        response = client.post(path, headers={header: value}, data=b"{}")
        assert "S3CRETKEY" not in response.get_data(as_text=True), path
