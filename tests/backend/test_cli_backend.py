"""`branchpy-telemetry-backend keys | purge | migrate | serve`, driven as subprocesses."""

from __future__ import annotations

import json
import signal
import subprocess
from datetime import timedelta

import requests

from branchpy_telemetry.backend.sinks.registry import open_sink
from branchpy_telemetry.backend.sinks.sqlite_schema import SCHEMA_VERSION as SQLITE_SCHEMA
from branchpy_telemetry.client.contracts.timewindow import utcnow

from ..conftest import console_script
from .conftest import make_package
from .live_backend import clean_env, start_backend


def run(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([console_script("branchpy-telemetry-backend"), *args], capture_output=True,
                          text=True, env=clean_env(tmp_path / "home"), cwd=tmp_path, timeout=60)


def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_keys_create_prints_the_key_alone_on_the_last_line_and_the_server_accepts_it(tmp_path):
    result = run(tmp_path, "keys", "create", "--scope", "read", "--label", "dashboard", "--db", db(tmp_path))
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("bpt_") and " " not in key
    server = start_backend(tmp_path, clean_env(tmp_path / "home"), [db(tmp_path)])
    try:
        headers = {"X-API-Key": key}
        assert requests.get(server.api + "/stats", headers=headers, timeout=10).status_code == 200
        assert requests.post(server.api + "/upload", headers=headers, timeout=10).status_code == 403
        assert "http.request" in server.logs()  # structlog access log on stderr
    finally:
        server.stop()


def test_keys_create_json_list_and_revoke(tmp_path):
    created = run(tmp_path, "keys", "create", "--scope", "ingest", "--json", "--db", db(tmp_path))
    assert created.returncode == 0, created.stderr
    record = json.loads(created.stdout)
    assert record["scope"] == "ingest" and record["key"].startswith(f"bpt_{record['key_id']}_")
    listed = run(tmp_path, "keys", "list", "--db", db(tmp_path))
    assert record["key_id"] in listed.stdout and record["key"] not in listed.stdout
    assert "active" in listed.stdout
    revoked = run(tmp_path, "keys", "revoke", record["key_id"], "--db", db(tmp_path))
    assert revoked.returncode == 0 and record["key_id"] in revoked.stdout
    rows = json.loads(run(tmp_path, "keys", "list", "--json", "--db", db(tmp_path)).stdout)
    assert [r["revoked_at"] is not None for r in rows] == [True]
    assert all("key" not in r and "key_hash" not in r for r in rows)


def test_revoking_an_unknown_key_fails_with_a_hint(tmp_path):
    result = run(tmp_path, "keys", "revoke", "deadbeef", "--db", db(tmp_path))
    assert result.returncode == 1
    assert "not_found" in result.stderr and "keys list" in result.stderr


def test_bad_scope_and_bad_db_url_are_usage_errors(tmp_path):
    assert run(tmp_path, "keys", "create", "--scope", "root", "--db", db(tmp_path)).returncode == 2
    result = run(tmp_path, "keys", "list", "--db", "postgres://x/y")
    assert result.returncode == 2 and "scheme" in result.stderr and "Traceback" not in result.stderr


def test_purge_deletes_events_older_than_the_cutoff_and_prints_the_count(tmp_path):
    sink = open_sink(db(tmp_path))
    try:
        now = utcnow()
        for seed, age in ((1, 200), (2, 100), (3, 10)):
            package = make_package(30, seed=seed, start=now - timedelta(days=age))
            sink.store_package(package, receipt="sha256:x", body_bytes=1, received_at=now)
    finally:
        sink.close()
    result = run(tmp_path, "purge", "--older-than", "90d", "--batch-size", "7", "--db", db(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("deleted 60 events older than ")
    again = run(tmp_path, "purge", "--older-than", "90d", "--json", "--db", db(tmp_path))
    assert json.loads(again.stdout)["deleted"] == 0
    sink = open_sink(db(tmp_path))
    try:
        assert sink.stats().events == 30
    finally:
        sink.close()


def test_purge_with_a_bad_duration_is_a_usage_error(tmp_path):
    result = run(tmp_path, "purge", "--older-than", "ninety days", "--db", db(tmp_path))
    assert result.returncode == 2
    assert "invalid duration" in result.stderr and "hint:" in result.stderr


def test_migrate_says_it_created_the_database_then_that_nothing_was_left_to_do(tmp_path):
    first = run(tmp_path, "migrate", "--db", db(tmp_path))
    second = run(tmp_path, "migrate", "--db", db(tmp_path))
    assert first.returncode == second.returncode == 0
    assert first.stdout.splitlines() == [f"created database file {tmp_path / 'cli.db'} (it did not exist)",
                                         f"schema version 0 -> {SQLITE_SCHEMA}",
                                         f"schema version {SQLITE_SCHEMA}"]
    current = f"schema version {SQLITE_SCHEMA} (already current, nothing to do)"
    assert second.stdout.splitlines() == [current]
    assert first.stderr == second.stderr == ""  # quiet: no log line mixed in


def test_serve_rejects_zero_workers(tmp_path):
    result = run(tmp_path, "serve", "--workers", "0", "--db", db(tmp_path))
    assert result.returncode == 2 and "--workers" in result.stderr


def test_serve_without_db_uses_the_database_named_in_the_environment(tmp_path):
    env = clean_env(tmp_path / "home", db=db(tmp_path))
    server = start_backend(tmp_path, env, [db(tmp_path)], pass_db=False)
    try:
        health = requests.get(server.api + "/health", timeout=10).json()
        assert health["status"] == "ok"
    finally:
        server.stop()
    assert (tmp_path / "cli.db").exists()
    assert server.proc.returncode == 0  # SIGTERM is a clean stop
    assert '"serve.stopped"' in server.logs()


def test_ctrl_c_stops_serve_even_when_started_with_sigint_ignored(tmp_path):
    env = clean_env(tmp_path / "home")
    server = start_backend(tmp_path, env, [db(tmp_path)], sigint_ignored=True)
    try:
        assert requests.get(server.api + "/health", timeout=10).status_code == 200
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(30) == 0
    finally:
        server.stop()
    assert '"serve.stopped"' in server.logs()


SERVE_FLAGS = {"--connection-limit": ("connection_limit", "50", 50),
               "--keepalive-timeout": ("keepalive_timeout_s", "90", 90.0),
               "--header-timeout": ("header_timeout_s", "4", 4.0),
               "--body-timeout": ("body_timeout_s", "6", 6.0),
               "--body-min-rate": ("body_min_rate", "2048", 2048),
               "--trusted-proxy": ("trusted_proxy", "10.0.0.2", "10.0.0.2"),
               "--secondary-backlog": ("secondary_backlog", "/srv/bp/backlog.db", "/srv/bp/backlog.db")}


def test_serve_limits_are_in_help_and_reach_the_settings(tmp_path, monkeypatch):
    from branchpy_telemetry.backend.cli import build_parser, settings_from_args
    from branchpy_telemetry.backend.wsgi_server import ServerLimits

    help_text = subprocess.run([console_script("branchpy-telemetry-backend"), "serve", "--help"],
                               capture_output=True, text=True, check=True).stdout
    argv = ["serve"]
    for flag, (_, value, _) in SERVE_FLAGS.items():
        assert flag in help_text
        argv += [flag, value]
    monkeypatch.setenv("BRANCHPY_TELEMETRY_BACKEND_HEADER_TIMEOUT_S", "99")  # a flag beats the environment
    settings = settings_from_args(build_parser().parse_args(argv))
    for _, (field, _, expected) in SERVE_FLAGS.items():
        assert getattr(settings, field) == expected, field
    assert ServerLimits.from_settings(settings).header_timeout_s == 4.0
