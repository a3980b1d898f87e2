"""API keys appear nowhere but in the config file and the upload's header.

A session that sets keys through the CLI and the bridge, then runs every
command that reads or uses them, including failing uploads (401 and 422
answers, a refused request) and an event that carries the key in its attrs:
no CLI output, no bridge message, no control reply, no line of the daemon
log, no exported package and no other file under the telemetry home (the
raw spool aside, which holds what the caller emitted) holds a key; the
backend sees it only in `X-API-Key`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ..daemon.recording_server import RecordingServer, error_reply

BRANCHPY = str(Path(sys.executable).parent / "branchpy")
BRIDGE = str(Path(sys.executable).parent / "branchpy-telemetry-bridge")
CLI_KEY = "bpt_cli_7f3a9c1e5b2d4f60a8c7e9d1b3f5a7c9"
BRIDGE_KEY = "bpt_bridge_0e2c4a6b8d1f3e5a7c9b0d2f4e6a8c1b"


def test_api_keys_never_leave_the_config_file_except_in_the_upload_header(running_daemon, subprocess_env,
                                                                         paths, tmp_path):
    server = RecordingServer().start()
    outputs: list[str] = []

    def cli(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([BRANCHPY, "telemetry", *args], env=subprocess_env, capture_output=True,
                                text=True, timeout=120)
        outputs.extend([result.stdout, result.stderr])
        return result

    try:
        assert cli("config", "set", "telemetry.endpoint", server.base_url).returncode == 0
        assert cli("config", "set", "telemetry.api_key", CLI_KEY).returncode == 0
        for args in (("config", "get", "telemetry.api_key"), ("--json", "config", "get", "telemetry.api_key"),
                     ("config", "show"), ("--json", "config", "show"), ("status",), ("--json", "status"),
                     ("daemon", "status")):
            assert cli(*args).returncode == 0
        assert cli("emit", "--category", "command", "--name", "analyze", "--attr", f"api_key={CLI_KEY}",
                   "--attr", f"note={CLI_KEY}").returncode == 0
        package = tmp_path / "pkg.json"
        assert cli("export", "--output", str(package)).returncode == 0
        server.script(error_reply(401, "unauthorized", "unknown API key"))
        assert cli("upload", "--file", str(package)).returncode == 5
        server.script(error_reply(422, "validation_failed", "no"))
        assert cli("--json", "upload", "--file", str(package)).returncode == 4
        assert cli("sync").returncode in (0, 5)
        assert cli("history").returncode == 0 and cli("--json", "history").returncode == 0

        bridge_lines = [
            {"id": 1, "type": "telemetry.setConfig",
             "payload": {"key": "telemetry.api_key", "value": BRIDGE_KEY}},
            {"id": 2, "type": "telemetry.getConfig", "payload": {"key": "telemetry.api_key"}},
            {"id": 3, "type": "telemetry.getConfig"},
            {"id": 4, "type": "telemetry.status"},
            {"id": 5, "type": "telemetry.setConfig", "payload": {"key": "telemetry.api_key",
                                                                 "value": BRIDGE_KEY, "extra": 1}},
        ]
        bridge = subprocess.run([BRIDGE], env=subprocess_env, capture_output=True, text=True, timeout=120,
                                input="\n".join(json.dumps(m) for m in bridge_lines) + "\n")
        outputs.extend([bridge.stdout, bridge.stderr])
        answers = {m["id"]: m for m in map(json.loads, bridge.stdout.splitlines())}
        assert answers[1]["ok"] and answers[2]["ok"] and answers[4]["ok"] and not answers[5]["ok"]
        masked = running_daemon.call("config.get", {"key": "telemetry.api_key"})["value"]
        assert masked == BRIDGE_KEY[:4] + "…"
    finally:
        server.stop()

    sent_keys = {r.headers.get("X-Api-Key") for r in server.requests}
    assert sent_keys == {CLI_KEY}
    everywhere_else = {
        "CLI and bridge output": "\n".join(outputs),
        "request bodies": "\n".join(r.body.decode(errors="replace") for r in server.requests),
        "daemon log": running_daemon.log_text(),
    }
    home = Path(subprocess_env["BRANCHPY_TELEMETRY_HOME"])
    for root, _, files in os.walk(home):
        for name in files:
            path = Path(root) / name
            # The spool keeps what the caller emitted (this test puts a key in two attrs): raw,
            # local, 0600; what leaves is the exported package, checked below.
            if path != paths.config_file and path.is_file() and not path.is_relative_to(paths.spool_dir):
                everywhere_else[str(path.relative_to(home))] = path.read_bytes().decode(errors="replace")
    everywhere_else["exported package"] = package.read_text()
    assert len(everywhere_else) > 10 and "daemon.log" in "".join(everywhere_else)
    for key in (CLI_KEY, BRIDGE_KEY):
        leaks = [where for where, text in everywhere_else.items() if key in text or key[4:20] in text]
        assert leaks == [], f"{key[:8]}… found in {leaks}"
    assert BRIDGE_KEY in paths.config_file.read_text()
