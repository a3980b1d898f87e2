"""`branchpy-telemetry-bridge` driven over stdin/stdout against a real daemon."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .protocol_schema import assert_valid_message

BRIDGE = str(Path(sys.executable).parent / "branchpy-telemetry-bridge")


def run_bridge(messages: list, env: dict, *args: str, cwd: Path | None = None) -> tuple[list[dict], str, int]:
    """Send lines (dicts are JSON-encoded, strings sent raw), close stdin, collect every output line.

    Every line the bridge writes must validate against the published protocol schema."""
    lines = [m if isinstance(m, str) else json.dumps(m) for m in messages]
    result = subprocess.run([BRIDGE, *args], input="\n".join(lines) + "\n", env=env, cwd=cwd,
                            capture_output=True, text=True, timeout=120)
    out = [json.loads(line) for line in result.stdout.splitlines()]  # stdout is protocol only
    for message in out:
        assert_valid_message(message, "receive")
    return out, result.stderr, result.returncode


def results_by_id(out: list[dict]) -> dict:
    return {m["id"]: m for m in out if m.get("type") != "telemetry.progress"}


def test_bridge_round_trip_with_malformed_lines_never_crashes(running_daemon, subprocess_env):
    out, stderr, code = run_bridge([
        {"id": 1, "type": "telemetry.status"},
        "this is not json",
        "[1, 2]",
        {"id": 3, "type": "telemetry.teleport", "payload": {}},
        {"id": 4, "type": "telemetry.status", "payload": "fast"},
        {"id": 5},
        {"id": 6, "type": "telemetry.setConfig",
         "payload": {"key": "telemetry.auto.interval", "value": "3h"}},
        {"id": "seven", "type": "telemetry.upload", "payload": {}},
        {"id": 8, "type": "telemetry.status", "payload": {"verbose": True}},
    ], subprocess_env)
    assert code == 0
    assert "Traceback" not in stderr
    by_id = results_by_id(out)
    assert by_id[1]["type"] == "telemetry.status.result" and by_id[1]["ok"] is True
    assert by_id[1]["payload"]["pid"] == running_daemon.proc.pid
    anonymous = [m for m in out if m["id"] is None]
    assert [m["payload"]["code"] for m in anonymous] == ["malformed_request", "malformed_request"]
    assert all(m["type"] == "telemetry.error" and m["ok"] is False for m in anonymous)
    assert by_id[3]["type"] == "telemetry.teleport.result"
    assert by_id[3]["payload"]["code"] == "unknown_command"
    assert by_id[4]["payload"]["code"] == "malformed_request"
    assert by_id[5]["ok"] is False and by_id[5]["payload"]["code"] == "malformed_request"
    assert by_id[6]["ok"] is True and by_id[6]["payload"]["value"] == "3h"
    # the daemon's own error (missing upload arguments) comes through with its code
    assert by_id["seven"]["type"] == "telemetry.upload.result" and by_id["seven"]["ok"] is False
    assert by_id["seven"]["payload"]["code"] in ("unknown_command", "bad_arguments")
    assert by_id["seven"]["payload"]["message"]
    assert by_id[8]["payload"]["code"] == "bad_arguments"
    assert len(out) == 9


def test_bridge_get_config_reads_what_set_config_wrote(running_daemon, subprocess_env):
    run_bridge([{"id": 1, "type": "telemetry.setConfig",
                 "payload": {"key": "telemetry.mode", "value": "auto"}}], subprocess_env)
    out, _, _ = run_bridge([{"id": 2, "type": "telemetry.getConfig", "payload": {"key": "telemetry.mode"}},
                            {"id": 3, "type": "telemetry.getConfig"}], subprocess_env)
    by_id = results_by_id(out)
    assert by_id[2]["payload"]["value"] == "auto"
    assert by_id[3]["payload"]["values"]["telemetry.mode"] == "auto"


def test_bridge_without_daemon_and_no_start_answers_daemon_unavailable(subprocess_env, paths):
    out, stderr, code = run_bridge([{"id": 1, "type": "telemetry.status"}], subprocess_env, "--no-start")
    assert code == 0
    assert out[0]["ok"] is False and out[0]["payload"]["code"] == "daemon_unavailable"
    assert paths.control_endpoint in out[0]["payload"]["hint"]
    assert str(paths.daemon_log) in out[0]["payload"]["hint"]


def test_bridge_empty_input_exits_0_with_no_output(subprocess_env):
    result = subprocess.run([BRIDGE, "--no-start"], input="", env=subprocess_env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == ""


def test_bridge_refuses_relative_paths_and_exports_to_an_absolute_one(running_daemon, subprocess_env,
                                                                      tmp_path):
    for n in range(5):
        name = ("analyze", "lint", "check", "build", "graph")[n]
        running_daemon.call("emit", {"category": "command", "name": name, "duration_ms": n})
    workdir = tmp_path / "workspace"
    workdir.mkdir()
    out, stderr, code = run_bridge([
        {"id": "rel", "type": "telemetry.export", "payload": {"output": "bridge.json"}},
        {"id": "home", "type": "telemetry.preview", "payload": {"file": "~/bridge.json"}},
        {"id": "up", "type": "telemetry.upload", "payload": {"file": "./bridge.json", "dry_run": True}},
        {"id": "e1", "type": "telemetry.export",
         "payload": {"output": str(workdir / "abs.json"), "from": "1h"}},
    ], subprocess_env, cwd=workdir)
    assert code == 0, stderr
    by_id = results_by_id(out)
    for refused, name in (("rel", "output"), ("home", "file"), ("up", "file")):
        assert by_id[refused]["ok"] is False
        assert by_id[refused]["payload"]["code"] == "bad_arguments"
        assert by_id[refused]["payload"]["message"].startswith(f'"{name}" must be an absolute path')
        assert "does not resolve paths" in by_id[refused]["payload"]["hint"]
    assert not (workdir / "bridge.json").exists()
    result = by_id["e1"]
    assert result["type"] == "telemetry.export.result" and result["ok"] is True, result
    assert result["payload"]["files"] == [str(workdir / "abs.json")]
    assert result["payload"]["events"] == 5
    for progress in (m for m in out if m["type"] == "telemetry.progress"):
        assert progress["id"] == "e1" and progress["payload"]["cmd"] == "export"


def test_bridge_catalog_lists_what_may_be_collected_and_checks_a_file_at_an_absolute_path(
        running_daemon, subprocess_env, tmp_path):
    (tmp_path / "mine.toml").write_text('format = 1\nid = "mine"\nrevision = "1"\n')
    (tmp_path / "broken.toml").write_text('format = 1\nid = "mine"\n')
    out, stderr, code = run_bridge([
        {"id": "c1", "type": "telemetry.catalog"},
        {"id": "c2", "type": "telemetry.catalog", "payload": {"check": str(tmp_path / "mine.toml")}},
        {"id": "c3", "type": "telemetry.catalog", "payload": {"check": str(tmp_path / "broken.toml")}},
        {"id": "c4", "type": "telemetry.catalog", "payload": {"check": "mine.toml"}},
    ], subprocess_env, cwd=tmp_path)
    assert code == 0, stderr
    by_id = results_by_id(out)
    assert by_id["c1"]["type"] == "telemetry.catalog.result" and by_id["c1"]["ok"] is True
    assert by_id["c1"]["payload"]["id"] == "branchpy" and by_id["c1"]["payload"]["kind"] == "catalog"
    assert {(e["category"], e["name"]) for e in by_id["c1"]["payload"]["events"]} >= {
        ("command", "analyze"), ("feature", "graph.open"), ("session", "start")}
    checked = by_id["c2"]["payload"]
    assert (checked["valid"], checked["file"], checked["id"]) == (True, str(tmp_path / "mine.toml"), "mine")
    assert by_id["c3"]["ok"] is True and by_id["c3"]["payload"]["valid"] is False
    assert by_id["c3"]["payload"]["problems"]
    assert by_id["c4"]["ok"] is False and by_id["c4"]["payload"]["code"] == "bad_arguments"  # no guessing
