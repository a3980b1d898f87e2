"""The VS Code bridge's delivery handlers against a real daemon: setMode,
rotate, upload (dry run, with progress), history — argument names are the
CLI's long options with underscores (docs/bridge-protocol.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .delivery_env import emit_events

BRIDGE = str(Path(sys.executable).parent / "branchpy-telemetry-bridge")


def test_bridge_set_mode_rotate_upload_dry_run_and_history(running_daemon, subprocess_env, tmp_path, paths):
    emit_events(subprocess_env, tmp_path, 6)
    messages = [
        {"id": 1, "type": "telemetry.setMode",
         "payload": {"mode": "auto", "interval": "2h", "dry_run": True}},
        {"id": 2, "type": "telemetry.rotate", "payload": {}},
        {"id": 3, "type": "telemetry.upload", "payload": {"auto": True, "from": "1h", "dry_run": True}},
        {"id": 4, "type": "telemetry.setMode", "payload": {"mode": "manual"}},
    ]
    # one message at a time: each reply before the next request, as the extension does
    results = {}
    for message in messages + [{"id": 5, "type": "telemetry.history", "payload": {"limit": 5}}]:
        done = subprocess.run([BRIDGE], input=json.dumps(message) + "\n", env=subprocess_env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "Traceback" not in done.stderr
        for line in done.stdout.splitlines():
            reply = json.loads(line)
            if reply.get("type") != "telemetry.progress":
                results[reply["id"]] = reply
    assert results[1]["ok"] and results[1]["payload"]["mode"] == "auto" and results[1]["payload"]["dry_run"]
    assert results[2]["ok"] and results[2]["payload"]["rotated"] is True
    assert results[3]["ok"] and results[3]["payload"]["events"] == 6 and results[3]["payload"]["dry_run"]
    assert results[4]["ok"] and results[4]["payload"]["mode"] == "manual"
    [record] = results[5]["payload"]["records"]
    assert record["dry_run"] is True and record["events"] == 6
    assert 'mode = "auto"' not in paths.config_file.read_text()  # manual is the default: omitted
