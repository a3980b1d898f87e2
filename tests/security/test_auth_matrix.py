"""Authentication and authorization over every route.

Threats: a client with no key, a guessed or revoked key, or a key of the wrong
scope; a view added later that forgets to check; a client that guesses keys
to find one or to load the database.
Promises: every route outside the public allowlist answers 401 without a valid
key, 403 with the wrong scope; a revoked key stops working in every server
process within about a second; failed attempts are limited per client
address, and while limited they cost no database query.
"""

from __future__ import annotations

import secrets
import subprocess

import pytest
import requests
from flask import Blueprint

from branchpy_telemetry.backend.access import PUBLIC_ENDPOINTS, SCOPE_BY_BLUEPRINT, required_scope
from branchpy_telemetry.backend.app import create_app
from branchpy_telemetry.backend.auth import generate_key
from branchpy_telemetry.backend.settings import BackendSettings
from branchpy_telemetry.backend.sinks.memory import MemorySink
from branchpy_telemetry.backend.sinks.sqlite import LocalSQLiteSink
from branchpy_telemetry.client.contracts.timewindow import utcnow

from ..backend.live_backend import clean_env, start_backend, start_sqlite_backend
from ..conftest import console_script
from ..polling import wait_until

ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
SAMPLE_ARGS = {"filename": "dashboard.js"}


def concrete_url(rule) -> str:
    return rule.rule.replace("<path:filename>", SAMPLE_ARGS["filename"])


class CountingSQLiteSink(LocalSQLiteSink):
    """The real SQLite sink, counting the key lookups that reach the database."""

    def __init__(self, path):
        super().__init__(path)
        self.key_lookups = 0

    def find_api_key(self, key_hash):
        self.key_lookups += 1
        return super().find_api_key(key_hash)


@pytest.fixture
def app_and_keys(tmp_path):
    sink = CountingSQLiteSink(tmp_path / "events.db")
    keys = {}
    for scope in ("ingest", "read", "admin"):
        key, record = generate_key(scope, None, utcnow())
        sink.add_api_key(record)
        keys[scope] = key
    settings = BackendSettings(auth_failure_burst=5, auth_failure_rate_per_s=0.001)
    yield create_app(settings, sink), sink, keys
    sink.close()


def test_every_rule_outside_the_public_allowlist_is_401_without_a_key(app_and_keys):
    app, _, _ = app_and_keys
    client = app.test_client()
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        for method in sorted(rule.methods):
            with client.open(concrete_url(rule), method=method) as response:
                assert response.status_code == 401, (rule.rule, method, response.status_code)
                if method != "HEAD":
                    assert response.get_json()["error"]["code"] == "unauthorized"
            checked += 1
    assert checked >= 13


def test_the_public_allowlist_is_exactly_health_the_dashboard_page_its_static_files_and_icon(app_and_keys):
    app, _, _ = app_and_keys
    assert set(PUBLIC_ENDPOINTS) == {"meta.health", "dashboard.dashboard", "dashboard.favicon", "static"}
    client = app.test_client()
    assert client.get("/api/telemetry/health").status_code == 200
    assert client.get("/dashboard").status_code == 200
    with client.get("/favicon.ico") as response:
        assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    with client.get("/static/dashboard.js") as response:
        assert response.status_code == 200
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert set(PUBLIC_ENDPOINTS) <= endpoints  # no stale entry hides a renamed view


def test_a_view_added_later_without_any_declaration_needs_an_admin_key(app_and_keys):
    app, _, keys = app_and_keys
    extra = Blueprint("reports", __name__)

    @extra.get("/api/telemetry/reports/export")
    def export():
        return {"secret": "data"}

    app.register_blueprint(extra)
    client = app.test_client()
    assert "reports" not in SCOPE_BY_BLUEPRINT and required_scope("reports.export") == "admin"
    url = "/api/telemetry/reports/export"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"X-API-Key": keys["read"]}).status_code == 403
    assert client.get(url, headers={"X-API-Key": keys["admin"]}).status_code == 200


def test_failed_authentications_are_limited_per_address_without_a_query_each(app_and_keys):
    app, sink, keys = app_and_keys
    client = app.test_client()
    attacker = {"REMOTE_ADDR": "203.0.113.7"}
    assert client.get("/api/telemetry/stats", headers={"X-API-Key": keys["read"]},
                      environ_base=attacker).status_code == 200  # cached before the attack
    lookups_before = sink.key_lookups
    codes = [client.get("/api/telemetry/stats", headers={"X-API-Key": f"bpt_{secrets.token_hex(20)}"},
                        environ_base=attacker).status_code for _ in range(200)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    assert sink.key_lookups - lookups_before == 5  # the burst; the next 195 cost no query
    limited = client.get("/api/telemetry/stats", headers={"X-API-Key": "bpt_guess"}, environ_base=attacker)
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.get_json()["error"]["code"] == "rate_limited"
    # a key the server already knows still works from that address; other addresses are unaffected
    assert client.get("/api/telemetry/stats", headers={"X-API-Key": keys["read"]},
                      environ_base=attacker).status_code == 200
    other = client.get("/api/telemetry/stats", headers={"X-API-Key": "bpt_guess"},
                       environ_base={"REMOTE_ADDR": "198.51.100.1"})
    assert other.status_code == 401


def test_repeating_one_unknown_key_costs_one_query(app_and_keys):
    app, sink, _ = app_and_keys
    client = app.test_client()
    lookups_before = sink.key_lookups
    for i in range(4):  # four addresses, each under its failure burst
        for _ in range(4):
            response = client.get("/api/telemetry/stats", headers={"X-API-Key": "bpt_same_wrong_key"},
                                  environ_base={"REMOTE_ADDR": f"192.0.2.{i}"})
            assert response.status_code == 401
    assert sink.key_lookups - lookups_before == 1


# ---- over HTTP: the matrix on a real server ---------------------------------------------------

@pytest.fixture(scope="module")
def matrix_server(tmp_path_factory):
    backend = start_sqlite_backend(tmp_path_factory.mktemp("matrix"), auth_failure_burst="10000")
    sink = LocalSQLiteSink(backend.db_url.removeprefix("sqlite:///"))
    try:
        revoked, record = generate_key("admin", "revoked", utcnow())
        sink.add_api_key(record)
        sink.revoke_api_key(record.key_id, utcnow())
    finally:
        sink.close()
    backend.keys["revoked"] = revoked
    yield backend
    backend.stop()


def api_routes() -> list[tuple[str, str, str]]:
    """(method, path, scope) of every non-public API route, read from the app itself."""
    app = create_app(BackendSettings(), MemorySink())
    routes = []
    for rule in app.url_map.iter_rules():
        scope = required_scope(rule.endpoint)
        if scope is None or not rule.rule.startswith("/api/"):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((method, rule.rule, scope))
    return routes


CREDENTIALS = {
    "none": lambda s, scope: {},
    "wrong key": lambda s, scope: {"X-API-Key": "bpt_00000000_" + "x" * 43},
    "revoked key": lambda s, scope: {"X-API-Key": s.keys["revoked"]},
    "wrong scope": lambda s, scope: {"X-API-Key": s.keys["read" if scope == "ingest" else "ingest"]},
    "bearer, right scope": lambda s, scope: {"Authorization": f"Bearer {s.keys[scope]}"},
    "x-api-key, admin": lambda s, scope: {"X-API-Key": s.keys["admin"]},
    "bearer, wrong key": lambda s, scope: {"Authorization": "Bearer bpt_nope"},
    "basic auth": lambda s, scope: {"Authorization": "Basic YWRtaW46YWRtaW4="},
}
EXPECTED = {"none": 401, "wrong key": 401, "revoked key": 401, "wrong scope": 403,
            "bearer, right scope": "ok", "x-api-key, admin": "ok", "bearer, wrong key": 401,
            "basic auth": 401}


@pytest.mark.parametrize("method,path,scope", api_routes())
def test_auth_matrix_over_every_api_route(matrix_server, method, path, scope):
    for name, make_headers in CREDENTIALS.items():
        headers = make_headers(matrix_server, scope)
        response = requests.request(method, matrix_server.url + path, headers=headers, timeout=10,
                                    data=b"{}" if method == "POST" else None)
        expected = EXPECTED[name]
        if expected == "ok":  # authorized: the endpoint's own answer (an empty upload is a 422)
            assert response.status_code not in (401, 403, 429), (name, response.text[:200])
            assert response.status_code < 500, (name, response.text[:200])
        else:
            assert response.status_code == expected, (name, response.status_code, response.text[:200])
            assert response.json()["error"]["code"] == ("unauthorized" if expected == 401 else "forbidden")
        for value in headers.values():
            assert value.split()[-1] not in response.text  # no key is echoed


def test_a_revoked_key_stops_working_in_every_server_process_within_seconds(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'shared.db'}"
    env = clean_env(tmp_path / "home", auth_cache_seconds="600")  # only the revocation check can explain it
    first = start_backend(tmp_path / "a", env, [db_url])
    second = start_backend(tmp_path / "b", env, [db_url])
    try:
        key = first.keys["read"]
        def status(server) -> int:
            return requests.get(server.api + "/stats", headers={"X-API-Key": key}, timeout=10).status_code

        assert [status(first), status(second)] == [200, 200]  # both processes have the key cached
        key_id = key.split("_")[1]
        subprocess.run([console_script("branchpy-telemetry-backend"), "keys", "revoke", key_id,
                        "--db", db_url], env=env, check=True, capture_output=True, timeout=30)
        pending = {first.url, second.url}

        def refused_by_both() -> bool:
            for server in (first, second):
                if server.url in pending and status(server) == 401:
                    pending.discard(server.url)
            return not pending

        wait_until(refused_by_both, timeout=5.0, what=lambda: f"the revocation (still accepted by {pending})")
    finally:
        first.stop()
        second.stop()
