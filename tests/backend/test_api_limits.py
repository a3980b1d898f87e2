"""429 from the per-key token bucket, 503 when the primary sink dies, 500 without a traceback."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
import requests

from branchpy_telemetry.backend.app import create_app
from branchpy_telemetry.backend.auth import generate_key
from branchpy_telemetry.backend.settings import BackendSettings
from branchpy_telemetry.backend.sinks.memory import MemorySink
from branchpy_telemetry.client.contracts.timewindow import utcnow

from .conftest import make_package
from .live_backend import start_sqlite_backend

JSON = {"Content-Type": "application/json"}


def post_package(server, seed: int, scope: str = "ingest") -> requests.Response:
    return requests.post(server.api + "/upload", data=msgspec.json.encode(make_package(2, seed=seed)),
                         headers={**server.headers(scope), **JSON}, timeout=10)


@pytest.fixture
def tight_server(tmp_path):
    backend = start_sqlite_backend(tmp_path, upload_rate_per_s="0.01", upload_burst="2",
                                   query_rate_per_s="0.01", query_burst="3")
    yield backend
    backend.stop()


def test_uploads_past_the_burst_get_429_with_retry_after_and_are_not_stored(tight_server):
    assert [post_package(tight_server, seed).status_code for seed in (1, 2)] == [201, 201]
    limited = post_package(tight_server, 3)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    retry_after = int(limited.headers["Retry-After"])
    assert 1 <= retry_after <= 100
    stats = requests.get(tight_server.api + "/stats", headers=tight_server.headers("read"), timeout=10).json()
    assert stats["packages"] == 2


def test_rate_limits_are_per_key(tight_server):
    for seed in (1, 2):
        post_package(tight_server, seed, "ingest")
    assert post_package(tight_server, 3, "ingest").status_code == 429
    assert post_package(tight_server, 4, "admin").status_code == 201


def test_queries_have_their_own_bucket(tight_server):
    codes = [requests.get(tight_server.api + "/stats", headers=tight_server.headers("read"), timeout=10)
             .status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_health_is_never_rate_limited(tight_server):
    assert {requests.get(tight_server.api + "/health", timeout=10).status_code for _ in range(20)} == {200}


def _corrupt_sqlite(db: Path) -> None:
    """Overwrite the database in place (same inode, so open connections see it too)."""
    size = db.stat().st_size
    with open(db, "r+b") as handle:
        handle.write(b"\xde\xad" * (size // 2))
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def test_a_dead_primary_gives_503_on_upload_queries_and_health(tmp_path):
    server = start_sqlite_backend(tmp_path)
    try:
        assert post_package(server, 1).status_code == 201
        _corrupt_sqlite(tmp_path / "events.db")
        response = post_package(server, 2)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "sink_unavailable"
        assert "Traceback" not in response.text
        stats = requests.get(server.api + "/stats", headers=server.headers("read"), timeout=10)
        assert stats.status_code == 503
        health = requests.get(server.api + "/health", timeout=10)
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        assert not any(s["ok"] for s in health.json()["sinks"].values())
    finally:
        server.stop()
    assert server.proc.returncode is not None


def test_an_unexpected_exception_is_a_json_500_without_traceback():
    """In-process (a route that fails on purpose cannot be added to a running server)."""
    sink = MemorySink()
    key, record = generate_key("admin", None, utcnow())
    sink.add_api_key(record)
    app = create_app(BackendSettings(), sink)

    @app.get("/api/telemetry/boom")
    def boom():
        raise RuntimeError("secret internal detail")

    response = app.test_client().get("/api/telemetry/boom", headers={"X-API-Key": key})
    assert response.status_code == 500
    assert response.get_json() == {"error": {"code": "internal_error",
                                             "message": "the server failed to handle this request"}}
    assert b"secret internal detail" not in response.data
