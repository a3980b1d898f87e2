"""The daemon the CLI starts writes `daemon.log`, rotated at 5 MiB with 3 older generations kept:
it never grows without bound, stays private, and the daemon's own stdout/stderr follow the
current file after a rotation."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from branchpy_telemetry.client.infra.log_file import GENERATIONS, MAX_BYTES

from ..conftest import console_script
from .test_cli import stop_daemon_if_running


def branchpy(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([console_script("branchpy"), "telemetry", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def fill(log: Path, marker: str) -> None:
    """A log already at the size limit, as weeks of auto-mode runs would leave it."""
    line = json.dumps({"event": marker, "filler": "x" * 200}) + "\n"
    with open(log, "w") as fh:
        fh.write(line * (MAX_BYTES // len(line) + 1))
    log.chmod(0o600)


@pytest.mark.slow
def test_the_log_of_a_daemon_the_cli_started_rotates_and_keeps_three_generations(subprocess_env, paths):
    paths.log_dir.mkdir(parents=True, exist_ok=True)
    log = paths.daemon_log
    try:
        for cycle in range(GENERATIONS + 2):
            fill(log, f"cycle-{cycle}")
            started = branchpy(subprocess_env, "daemon", "start")
            assert started.returncode == 0, started.stderr
            pid = int(started.stdout.split("pid ")[1].split(",")[0])
            # the daemon's first line rotated the full log away; its stderr follows the new file
            assert os.path.realpath(f"/proc/{pid}/fd/2") == str(log)
            assert "daemon.started" in log.read_text() and f"cycle-{cycle}" not in log.read_text()
            assert f"cycle-{cycle}" in Path(f"{log}.1").read_text()[:300]
            assert branchpy(subprocess_env, "daemon", "stop").returncode == 0
    finally:
        stop_daemon_if_running(paths)
    kept = sorted(p.name for p in paths.log_dir.iterdir() if p.name.startswith("daemon.log"))
    assert kept == ["daemon.log", "daemon.log.1", "daemon.log.2", "daemon.log.3"]
    for path in paths.log_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert log.stat().st_size < MAX_BYTES
    last = GENERATIONS + 1
    for generation in range(1, GENERATIONS + 1):  # newest first; cycles 0 and 1 are gone
        assert f'"cycle-{last + 1 - generation}"' in Path(f"{log}.{generation}").read_text()[:300]


def test_a_daemon_run_by_hand_or_by_systemd_logs_to_stderr_not_to_the_file(subprocess_env, paths, tmp_path):
    from branchpy_telemetry.client.thin.daemon_launcher import wait_until_listening

    err = tmp_path / "stderr"
    with open(err, "wb") as stderr:
        proc = subprocess.Popen([console_script("branchpy-telemetryd"), "--idle-timeout", "0"],
                                env=subprocess_env, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
    try:
        wait_until_listening(paths, proc, 20)
    finally:
        proc.terminate()
        assert proc.wait(20) == 0
    assert any(json.loads(line)["event"] == "daemon.started" for line in err.read_text().splitlines())
    assert not paths.daemon_log.exists()
