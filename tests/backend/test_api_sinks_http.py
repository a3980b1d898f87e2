"""`serve` on MySQL and on a CompositeSink (several --db), failures made real:
the MySQL database is dropped under the running server."""

from __future__ import annotations

import msgspec
import pytest
import requests

from .conftest import make_package
from .live_backend import clean_env, start_backend

pytestmark = pytest.mark.mysql


def upload(server, seed: int | bytes) -> requests.Response:
    body = seed if isinstance(seed, bytes) else msgspec.json.encode(make_package(20, seed=seed))
    return requests.post(server.api + "/upload", data=body, timeout=30,
                         headers={**server.headers("ingest"), "Content-Type": "application/json"})


def test_mysql_primary_serves_then_a_dropped_database_gives_503(tmp_path, mysql_database):
    url, drop = mysql_database
    server = start_backend(tmp_path, clean_env(tmp_path / "home"), [url])
    try:
        body = msgspec.json.encode(make_package(20, seed=1))
        assert upload(server, body).status_code == 201
        assert upload(server, body).json()["duplicate"] is True
        stats = requests.get(server.api + "/stats", headers=server.headers("read"), timeout=10).json()
        assert (stats["events"], stats["packages"]) == (20, 1)
        assert requests.get(server.api + "/health", timeout=10).json()["status"] == "ok"
        drop()
        response = upload(server, 2)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "sink_unavailable"
        assert requests.get(server.api + "/health", timeout=10).status_code == 503
    finally:
        server.stop()


def test_composite_keeps_accepting_when_the_mysql_secondary_is_dropped(tmp_path, mysql_database):
    url, drop = mysql_database
    primary = f"sqlite:///{tmp_path / 'primary.db'}"
    server = start_backend(tmp_path, clean_env(tmp_path / "home"), [primary, url])
    try:
        health = requests.get(server.api + "/health", timeout=10).json()
        assert health["status"] == "ok" and len(health["sinks"]) == 2
        assert upload(server, 1).status_code == 201
        drop()
        assert upload(server, 2).status_code == 201  # the primary decides
        health = requests.get(server.api + "/health", timeout=30)
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "degraded"
        assert [h["ok"] for h in body["sinks"].values()] == [True, False]
        stats = requests.get(server.api + "/stats", headers=server.headers("read"), timeout=10).json()
        assert stats["packages"] == 2
    finally:
        server.stop()
