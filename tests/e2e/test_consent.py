"""Consent through every path that can deliver: the caller's environment (CLI and
bridge), the extension's setting passed through the bridge, the daemon's own
environment and `telemetry.consent = "off"` — each blocks what it should, nothing
is sent, and `status` names the source. Real CLI, bridge and daemon processes,
a recording HTTP server."""

from __future__ import annotations

import json

import pytest

from .delivery_env import configure, emit_events, run_cli
from .test_bridge import results_by_id, run_bridge


@pytest.fixture
def configured(server, paths, subprocess_env, tmp_path):
    configure(paths.config_file, telemetry__endpoint=server.base_url)
    emit_events(subprocess_env, tmp_path, 4)
    return subprocess_env


def outbox_files(paths) -> list:
    return list(paths.outbox_dir.glob("*.json"))


def status_json(env) -> dict:
    shown = run_cli(env, "--json", "status")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def test_sync_asked_with_do_not_track_is_refused_but_a_consenting_caller_delivers(
        server, configured, start_daemon, paths):
    start_daemon("--idle-timeout", "0")
    refused = run_cli({**configured, "DO_NOT_TRACK": "1"}, "sync")
    assert refused.returncode == 1
    assert "consent is withdrawn by DO_NOT_TRACK=1 in the caller's environment" in refused.stderr
    assert server.requests == [] and len(outbox_files(paths)) == 1  # packaged, kept for later
    delivered = run_cli(configured, "sync")
    assert delivered.returncode == 0, delivered.stderr
    assert len(server.requests) == 1 and outbox_files(paths) == []


def test_mode_auto_asked_without_consent_changes_nothing(configured, start_daemon, paths):
    start_daemon("--idle-timeout", "0")
    refused = run_cli({**configured, "BRANCHPY_TELEMETRY": "off"}, "mode", "auto", "--interval", "1h")
    assert refused.returncode == 1 and "BRANCHPY_TELEMETRY=off" in refused.stderr
    assert status_json(configured)["mode"] == "manual"
    assert "mode" not in paths.config_file.read_text()


def test_config_consent_off_blocks_every_delivery_and_status_says_so(server, configured, start_daemon):
    start_daemon("--idle-timeout", "0")
    assert run_cli(configured, "config", "set", "telemetry.consent", "off").returncode == 0
    consent = status_json(configured)["consent"]
    assert consent == {"deliveries": "blocked", "blocked_by": 'the config (telemetry.consent = "off")',
                       "config": "off"}
    refused = run_cli(configured, "sync")
    assert refused.returncode == 1 and "telemetry.consent" in refused.stderr
    assert "config set telemetry.consent on" in refused.stderr  # the hint leads somewhere
    assert server.requests == []
    shown = run_cli(configured, "status")
    assert 'deliveries     blocked by the config' in shown.stdout or "blocked by the config" in shown.stdout


def test_status_names_the_callers_environment_when_it_blocks(configured, start_daemon):
    start_daemon("--idle-timeout", "0")
    assert status_json(configured)["consent"]["deliveries"] == "allowed"
    blocked = status_json({**configured, "DO_NOT_TRACK": "true"})["consent"]
    assert blocked["blocked_by"] == "DO_NOT_TRACK=true in the caller's environment"


def test_a_daemon_spawned_by_a_client_without_consent_is_not_blocked_for_later_callers(
        server, configured, paths):
    """The CLI spawns the daemon (no daemon runs); its DO_NOT_TRACK stays with that request."""
    refused = run_cli({**configured, "DO_NOT_TRACK": "1"}, "sync")
    assert refused.returncode == 1 and "caller's environment" in refused.stderr
    try:
        assert status_json(configured)["consent"]["deliveries"] == "allowed"
        delivered = run_cli(configured, "sync")
        assert delivered.returncode == 0, delivered.stderr
        assert len(server.requests) == 1
    finally:
        run_cli(configured, "daemon", "stop")


def test_the_daemons_own_environment_blocks_every_caller(server, configured, start_daemon):
    configured["DO_NOT_TRACK"] = "1"  # the daemon started below inherits it (as from a systemd unit)
    start_daemon("--idle-timeout", "0")
    caller = {k: v for k, v in configured.items() if k != "DO_NOT_TRACK"}
    refused = run_cli(caller, "sync")
    assert refused.returncode == 1 and "DO_NOT_TRACK=1 in the daemon's environment" in refused.stderr
    assert status_json(caller)["consent"]["blocked_by"] == "DO_NOT_TRACK=1 in the daemon's environment"
    assert server.requests == []


def test_bridge_carries_the_extensions_setting_and_its_own_environment(server, configured, start_daemon,
                                                                       paths):
    start_daemon("--idle-timeout", "0")
    out, stderr, code = run_bridge([
        {"id": 1, "type": "telemetry.sync", "payload": {"consent": "off"}},
        {"id": 2, "type": "telemetry.status", "payload": {"consent": "off",
                                                          "consent_source": "VS Code telemetry setting"}},
        {"id": 3, "type": "telemetry.history", "payload": {"consent": "off"}},  # not a delivery: ignored
    ], configured)
    assert code == 0, stderr
    by_id = results_by_id(out)
    assert by_id[1]["ok"] is False and by_id[1]["payload"]["code"] == "consent_withdrawn"
    assert "the extension's telemetry setting" in by_id[1]["payload"]["message"]
    assert by_id[2]["payload"]["consent"]["blocked_by"] == "VS Code telemetry setting"
    assert by_id[3]["ok"] is True
    out, stderr, code = run_bridge([{"id": 4, "type": "telemetry.sync", "payload": {}}],
                                   {**configured, "DO_NOT_TRACK": "1"})
    assert results_by_id(out)[4]["payload"]["code"] == "consent_withdrawn"
    assert server.requests == [] and len(outbox_files(paths)) == 1
    out, stderr, code = run_bridge([{"id": 5, "type": "telemetry.sync", "payload": {"consent": "on"}}],
                                   configured)
    assert results_by_id(out)[5]["ok"] is True, out
    assert len(server.requests) == 1
