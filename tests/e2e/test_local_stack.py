"""`branchpy-telemetry-backend up` (the README's run command) starts the whole
local stack: backend on SQLite, local keys, daemon pointed at the backend."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import stat
import subprocess
import threading
import time

import requests

from ..conftest import console_script


def _start_up(cwd, env):
    proc = subprocess.Popen([console_script("branchpy-telemetry-backend"), "up", "--port", "0"],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        seen.append(line)
        if line.startswith("Ctrl-C"):
            return proc, "".join(seen)
    proc.kill()
    proc.wait()
    raise AssertionError("`up` did not finish starting:\n" + "".join(seen))


def _stop(proc, env):
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(60)  # generous: CI machines are loaded
    except subprocess.TimeoutExpired:
        proc.kill()  # leave no server behind, then fail
        proc.wait()
        code = "no exit within 60 s of SIGINT"
    finally:
        proc.stdout.close()
        subprocess.run([console_script("branchpy"), "telemetry", "daemon", "stop"], env=env,
                       capture_output=True, timeout=30)
    assert code == 0


def test_up_serves_creates_private_keys_and_points_the_daemon_at_the_backend(tmp_path, subprocess_env, paths):
    workdir = tmp_path / "work"
    workdir.mkdir()
    proc, welcome = _start_up(workdir, subprocess_env)
    try:
        base = re.search(r"backend:\s+(http://127\.0\.0\.1:\d+)/api/telemetry", welcome).group(1)
        read_key = re.search(r"dashboard: \S+/dashboard#key=(\S+)", welcome).group(1)
        assert "daemon: running" in welcome
        # The embedded SQLite default lives under the backend's working directory.
        assert (workdir / ".branchpy" / "telemetry" / "events.db").exists()
        keys_file = paths.local_backend_keys_file
        assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
        assert json.loads(keys_file.read_text())["read"] == read_key

        branchpy = console_script("branchpy")
        run = lambda *a: subprocess.run([branchpy, "telemetry", *a], cwd=workdir, env=subprocess_env,  # noqa: E731
                                        capture_output=True, text=True, timeout=60)
        emitted = run("emit", "--category", "command", "--name", "analyze", "--duration-ms", "12")
        assert emitted.returncode == 0, emitted.stderr
        assert run("export", "--output", "rc.json").returncode == 0
        uploaded = run("upload", "--file", "rc.json")
        assert uploaded.returncode == 0, uploaded.stderr

        stats = requests.get(f"{base}/api/telemetry/stats", headers={"X-API-Key": read_key}, timeout=10)
        assert stats.status_code == 200 and stats.json()["events"] == 1
        assert requests.get(f"{base}/dashboard", timeout=10).status_code == 200
    finally:
        _stop(proc, subprocess_env)

    # A second `up` reuses the stored keys instead of minting new ones.
    proc, welcome_again = _start_up(workdir, subprocess_env)
    try:
        assert f"#key={read_key}" in welcome_again
    finally:
        _stop(proc, subprocess_env)
    assert not os.path.exists(paths.control_socket)
