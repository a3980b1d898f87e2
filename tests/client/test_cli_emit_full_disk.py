"""`branchpy telemetry emit` on a full disk: exit 1 with the reason, nothing written.

Before: exit 0 and "not recorded: telemetry is off … or the spool could not
be written" — a script could not tell a full disk from consent. A real
16 KiB tmpfs (tests/conftest.py `tiny_tmpfs`) is the full disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BRANCHPY = str(Path(sys.executable).parent / "branchpy")


def fill(folder: Path) -> None:
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 1024)
    except OSError:
        pass
    finally:
        os.close(fd)


def emit(env: dict, *extra: str) -> subprocess.CompletedProcess:
    command = [BRANCHPY, "telemetry", *extra, "emit", "--category", "command", "--name", "analyze"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_emit_on_a_full_disk_exits_1_naming_the_reason_and_writes_nothing(tiny_tmpfs, subprocess_env):
    home = tiny_tmpfs / "home"
    (home / "state" / "spool").mkdir(parents=True)
    fill(tiny_tmpfs)
    env = {**subprocess_env, "BRANCHPY_TELEMETRY_HOME": str(home)}
    result = emit(env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "No space left on device" in result.stderr
    assert "nothing was written" in result.stderr
    assert "Traceback" not in result.stderr
    spool = home / "state" / "spool" / "events.jsonl"
    assert not spool.exists() or spool.read_bytes() == b""
    as_json = emit(env, "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["error"]["code"] == "storage_error"


def test_emit_under_do_not_track_still_exits_0(subprocess_env, paths):
    result = emit({**subprocess_env, "DO_NOT_TRACK": "1"})
    assert result.returncode == 0 and "telemetry is off" in result.stdout
    assert not paths.active_spool.exists()
