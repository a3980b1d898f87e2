"""The delivery commands through the real CLI and daemon, against a recording
HTTP server: 429 + Retry-After honoured, 422 quarantined without retry, a
changed file refused, dry runs, consent, purge's confirmation, mode/rotate/
history/status output and usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from branchpy_telemetry.daemon.delivery.ledger import read_history
from branchpy_telemetry.daemon.identity import load_or_create_governance_id

from ..daemon.recording_server import Reply, error_reply
from .delivery_env import configure, emit_events, run_cli


@pytest.fixture
def setup(server, paths, subprocess_env, start_daemon, tmp_path):
    configure(paths.config_file, telemetry__endpoint=server.base_url, telemetry__api_key="k-test")
    daemon = start_daemon("--idle-timeout", "0")
    emit_events(subprocess_env, tmp_path, 12)
    package = tmp_path / "rc-metrics.json"
    exported = run_cli(subprocess_env, "export", "--output", str(package))
    assert exported.returncode == 0, exported.stderr
    return daemon, package


def test_429_with_retry_after_2_is_honoured_before_the_package_is_delivered(server, setup, subprocess_env):
    _, package = setup
    server.script(Reply(429, {"error": {"code": "rate_limited", "message": "slow down"}},
                        {"Retry-After": "2"}))
    sent = run_cli(subprocess_env, "upload", "--file", str(package))
    assert sent.returncode == 0, sent.stderr
    first, second = server.wait_for_requests(2)
    assert 2.0 <= second.at - first.at < 5.0
    assert first.headers.get("X-Api-Key") == "k-test" and first.headers.get("Content-Encoding") == "gzip"
    assert "delivered" in sent.stdout


def test_422_is_quarantined_after_one_request_and_exits_4_naming_where_it_is(server, setup, subprocess_env,
                                                                           paths):
    _, package = setup
    original = package.read_bytes()
    server.script(error_reply(422, "privacy_violation", "package breaks privacy rules",
                              [{"pointer": "/summary/events/0/attrs/x", "rule": "raw_path"}]))
    sent = run_cli(subprocess_env, "upload", "--file", str(package))
    assert sent.returncode == 4, sent.stderr
    assert "package breaks privacy rules" in sent.stderr and str(paths.quarantine_dir) in sent.stderr
    assert len(server.requests) == 1
    assert package.read_bytes() == original  # the user's file is untouched
    assert len(list(paths.quarantine_dir.glob("*.reason.json"))) == 1


def test_a_file_changed_since_export_is_refused_with_exit_4_and_nothing_sent(server, setup, subprocess_env):
    _, package = setup
    package.write_bytes(package.read_bytes().replace(b'"analyze"', b'"analyzE"'))
    sent = run_cli(subprocess_env, "upload", "--file", str(package))
    assert sent.returncode == 4 and "changed since it was exported" in sent.stderr
    assert server.requests == []


def test_upload_dry_run_records_in_the_ledger_and_sends_nothing(server, setup, subprocess_env, paths):
    _, package = setup
    for args in (["--file", str(package)], ["--auto", "--from", "1h"]):
        dry = run_cli(subprocess_env, "upload", *args, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "would send (dry run)" in dry.stdout
    assert server.requests == []
    records = read_history(paths.ledger_file)
    assert [r.dry_run for r in records] == [True, True] and all(r.events == 12 for r in records)


def test_withdrawn_consent_blocks_upload_and_sync_with_a_clear_error(server, setup, subprocess_env):
    _, package = setup
    env = {**subprocess_env, "DO_NOT_TRACK": "1"}
    refused = run_cli(env, "upload", "--file", str(package))
    assert refused.returncode == 1 and "consent is withdrawn" in refused.stderr
    assert server.requests == []


def test_a_daemon_without_consent_packages_but_never_sends(server, paths, subprocess_env, start_daemon,
                                                          tmp_path):
    configure(paths.config_file, telemetry__endpoint=server.base_url)
    emit_events(subprocess_env, tmp_path, 3)
    subprocess_env["BRANCHPY_TELEMETRY"] = "off"  # the daemon started below inherits it
    start_daemon("--idle-timeout", "0")
    synced = run_cli({**subprocess_env, "BRANCHPY_TELEMETRY": "on"}, "sync")
    assert synced.returncode == 1 and "consent is withdrawn" in synced.stderr
    assert server.requests == []
    assert len(list(paths.outbox_dir.glob("*.json"))) == 1  # packaged and kept for later


def test_purge_without_a_terminal_or_yes_exits_2_and_keeps_everything(setup, subprocess_env, paths):
    refused = run_cli(subprocess_env, "purge")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert any(paths.spool_dir.glob("*.jsonl"))


def test_purge_yes_deletes_spool_outbox_and_ledger_and_reset_id_changes_the_governance_id(
        server, setup, subprocess_env, paths):
    _, package = setup
    assert run_cli(subprocess_env, "upload", "--file", str(package), "--dry-run").returncode == 0
    (paths.outbox_dir / "00000000000000000001-x.json").write_bytes(b"{}")
    before = load_or_create_governance_id(paths)
    purged = run_cli(subprocess_env, "purge", "--yes", "--reset-id", "--json")
    assert purged.returncode == 0, purged.stderr
    body = json.loads(purged.stdout)
    assert body["removed"]["ledger"] is True and body["removed"]["outbox_files"] == 1
    assert body["governance_id_reset"] is True and load_or_create_governance_id(paths) != before
    assert not paths.ledger_file.exists() and list(paths.outbox_dir.iterdir()) == []
    assert [p.name for p in paths.spool_dir.glob("*.jsonl")] in ([], ["events.jsonl"])


def test_purge_forgets_which_files_were_exported_or_reviewed_so_upload_file_then_refuses(
        server, setup, subprocess_env, paths):
    _, package = setup
    assert run_cli(subprocess_env, "preview", str(package)).returncode == 0
    assert paths.exports_file.exists() and paths.reviews_file.exists()
    purged = run_cli(subprocess_env, "purge", "--yes")
    assert purged.returncode == 0, purged.stderr
    assert not paths.exports_file.exists() and not paths.reviews_file.exists()
    assert not paths.staging_dir.exists()
    refused = run_cli(subprocess_env, "upload", "--file", str(package))
    assert refused.returncode == 4 and "not exported by this machine" in refused.stderr
    assert server.requests == []


def test_mode_rotate_history_and_status_report_what_they_did(setup, subprocess_env, paths):
    daemon, _ = setup
    rotated = run_cli(subprocess_env, "rotate")
    assert rotated.returncode == 0 and "rotated to" in rotated.stdout
    assert run_cli(subprocess_env, "rotate").stdout.startswith("nothing to rotate")
    mode = run_cli(subprocess_env, "mode", "auto", "--interval", "1h", "--json")
    assert mode.returncode == 0 and json.loads(mode.stdout)["mode"] == "auto"
    assert 'mode = "auto"' in paths.config_file.read_text()
    status = daemon.call("status")
    assert status["mode"] == "auto" and status["auto"]["scheduled"] and status["auto"]["next_run"]
    assert set(status["counters"]) >= {"emitted", "exported", "uploaded", "duplicates", "dropped"}
    assert run_cli(subprocess_env, "mode", "manual").returncode == 0
    assert daemon.call("status")["auto"]["scheduled"] is False
    assert "no uploads yet" in run_cli(subprocess_env, "history").stdout


@pytest.mark.parametrize("args, message", [
    (["upload"], "one of the arguments --file/-f --auto is required"),
    (["upload", "--auto"], "--auto needs --from"),
    (["upload", "--file", "x.json", "--from", "1h"], "--from goes with --auto"),
    (["upload", "--auto", "--from", "yesterday"], "invalid time"),
    (["mode", "auto", "--interval", "soon"], "invalid duration"),
    (["mode", "sometimes"], "invalid choice"),
    (["history", "--limit", "0"], "must be greater than 0"),
])
def test_bad_delivery_arguments_exit_2_with_a_message(subprocess_env, args, message):
    result = run_cli(subprocess_env, *args, "--no-start")
    assert result.returncode == 2 and message in result.stderr


def test_an_interval_below_the_10s_floor_is_refused_by_the_daemon(running_daemon):
    from branchpy_telemetry.client.contracts.errors import UsageError

    with pytest.raises(UsageError, match="below the floor"):
        running_daemon.call("mode", {"mode": "auto", "interval": "5s"})


def test_upload_of_a_missing_file_fails_with_not_found(setup, subprocess_env, tmp_path):
    result = run_cli(subprocess_env, "upload", "--file", str(tmp_path / "nope.json"))
    assert result.returncode == 1 and "no such package file" in result.stderr
    assert not Path(tmp_path / "nope.json").exists()


def test_config_set_mode_auto_starts_the_schedule_live_and_manual_stops_it(running_daemon):
    running_daemon.call("config.set", {"key": "telemetry.auto.interval", "value": "1h"})
    assert running_daemon.call("status")["auto"]["scheduled"] is False
    running_daemon.call("config.set", {"key": "telemetry.mode", "value": "auto"})
    status = running_daemon.call("status")
    assert status["auto"]["scheduled"] is True and status["auto"]["next_run"]
    running_daemon.call("config.set", {"key": "telemetry.mode", "value": "manual"})
    assert running_daemon.call("status")["auto"]["scheduled"] is False
