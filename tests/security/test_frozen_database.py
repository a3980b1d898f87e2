"""A frozen database behind a real server (`serve` on its own `mariadbd`).

Threat: the database stops answering without closing anything (a stopped
process, a full disk, a lost network path): every query waits forever, the
server's workers pile up behind it and `/health` hangs too, so the load
balancer keeps sending traffic to a backend that cannot store it.
Promise: `/health` says 503 within a few seconds; uploads get 503 with
Retry-After (the client keeps the package and tries later) instead of
hanging; once the database answers again, so does the backend.
The database is a private `mariadbd` (own data directory and port) frozen
with SIGSTOP; the shared server on 3306 is never touched.
"""

from __future__ import annotations

import time

import msgspec
import pytest
import requests

from branchpy_telemetry.client.contracts.config import Config, TelemetrySection
from branchpy_telemetry.daemon.delivery.uploader import upload_package

from ..backend.conftest import make_package
from ..backend.live_backend import clean_env, start_backend
from ..backend.own_mariadb import OwnMariaDB
from ..polling import wait_until

pytestmark = pytest.mark.mysql

HEALTH_DEADLINE_S = 5.0  # the probe's own deadline is 3 s; the rest is a loaded CI machine
FIRST_UPLOAD_DEADLINE_S = 15.0  # read_timeout (10 s) plus slack: the first request meets the freeze


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory):
    server = OwnMariaDB(tmp_path_factory.mktemp("own-mariadb")).start()
    yield server
    server.close()


def timed(call):
    started = time.monotonic()
    result = call()
    return time.monotonic() - started, result


def upload(server, seed: int) -> requests.Response:
    body = msgspec.json.encode(make_package(10, seed=seed))
    return requests.post(server.api + "/upload", data=body, timeout=60,
                         headers={**server.headers("ingest"), "Content-Type": "application/json"})


def health(server) -> requests.Response:
    return requests.get(server.api + "/health", timeout=60)


def test_a_frozen_database_gives_503s_in_seconds_and_the_backend_recovers(tmp_path, mariadb):
    server = start_backend(tmp_path, clean_env(tmp_path / "home"), [mariadb.url("bp_frozen")])
    try:
        assert upload(server, 1).status_code == 201
        assert health(server).json()["status"] == "ok"
        mariadb.freeze()
        try:
            elapsed, first = timed(lambda: upload(server, 2))  # meets the freeze on a pooled connection
            assert first.status_code == 503 and first.json()["error"]["code"] == "sink_unavailable"
            assert elapsed < FIRST_UPLOAD_DEADLINE_S, elapsed
            for _ in range(3):
                elapsed, answer = timed(lambda: health(server))
                assert answer.status_code == 503 and answer.json()["status"] == "unavailable"
                assert elapsed < HEALTH_DEADLINE_S, f"/health took {elapsed:.1f}s"
                assert answer.json()["sinks"] == {"mysql": {"ok": False, "kind": "mysql", "state": "down"}}
            elapsed, later = timed(lambda: upload(server, 3))  # the pool knows: no new wait
            assert later.status_code == 503 and int(later.headers["Retry-After"]) >= 1
            assert elapsed < 2.0, elapsed
            package = tmp_path / "kept.json"
            package.write_bytes(msgspec.json.encode(make_package(4, seed=4)))
            outcome = upload_package(package, Config(telemetry=TelemetrySection(
                endpoint=server.api, api_key=server.keys["ingest"])), max_attempts=1)
            assert (outcome.outcome, outcome.status_code) == ("throttled", 503)
            assert not outcome.should_quarantine
            assert package.exists()  # the client's policy: keep it, send it again after Retry-After
        finally:
            mariadb.thaw()
        wait_until(lambda: health(server).status_code == 200, timeout=20, interval=0.2,
                   what="the backend's recovery after the database came back")
        assert upload(server, 3).status_code == 201
        stats = requests.get(server.api + "/stats", headers=server.headers("read"), timeout=10).json()
        assert stats["packages"] == 2  # nothing half-written during the freeze
    finally:
        server.stop()
