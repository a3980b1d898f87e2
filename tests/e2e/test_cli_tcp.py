"""The tcp fallback (Windows, where ipc is unavailable), forced on this machine with
BRANCHPY_TELEMETRY_TRANSPORT=tcp: loopback ports, a 0600 address file with a token,
and ZMQ PLAIN so that a peer without the token cannot send commands."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from branchpy_telemetry.client.contracts.errors import DaemonUnavailableError
from branchpy_telemetry.client.contracts.transport import TRANSPORT_ENV, find_address
from branchpy_telemetry.client.thin.daemon_launcher import is_listening, wait_until_stopped
from branchpy_telemetry.client.thin.ipc import ControlClient

BIN = Path(sys.executable).parent


@pytest.fixture
def tcp_env(subprocess_env, monkeypatch, paths):
    monkeypatch.setenv(TRANSPORT_ENV, "tcp")
    env = {**subprocess_env, TRANSPORT_ENV: "tcp"}
    yield env
    if is_listening(paths):
        address = find_address(paths)
        with ControlClient(address.control, token=address.token, timeout=5, retries=1) as client:
            pid = client.call("shutdown")["pid"]
        assert wait_until_stopped(paths, pid, 10)


def branchpy(env, *args):
    return subprocess.run([str(BIN / "branchpy"), "telemetry", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_tcp_status_starts_a_daemon_on_loopback_with_a_private_address_file(tcp_env, paths):
    result = branchpy(tcp_env, "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["socket"].startswith("tcp://127.0.0.1:")
    assert status["progress_socket"].startswith("tcp://127.0.0.1:")
    assert stat.S_IMODE(paths.control_address_file.stat().st_mode) == 0o600
    assert not paths.control_socket.exists()
    assert find_address(paths).control == status["socket"]


def test_tcp_peer_without_the_token_gets_nothing_and_the_daemon_keeps_serving(tcp_env, paths):
    assert branchpy(tcp_env, "daemon", "start").returncode == 0
    address = find_address(paths)
    for token in (None, "wrong-token"):
        with ControlClient(address.control, token=token, timeout=0.5, retries=1) as intruder:
            with pytest.raises(DaemonUnavailableError):
                intruder.call("shutdown")
    with ControlClient(address.control, token=address.token, timeout=5, retries=1) as client:
        assert client.call("status")["socket"] == address.control


def test_tcp_stop_removes_the_address_file_and_no_start_then_exits_3(tcp_env, paths):
    assert branchpy(tcp_env, "daemon", "start").returncode == 0
    assert paths.control_address_file.exists()
    stopped = branchpy(tcp_env, "daemon", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not paths.control_address_file.exists()
    result = branchpy(tcp_env, "status", "--no-start")
    assert result.returncode == 3
    assert str(paths.control_address_file) in result.stderr and str(paths.daemon_log) in result.stderr


def test_tcp_stale_address_file_means_no_daemon(tcp_env, paths):
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    paths.control_address_file.write_text(json.dumps({"control": "tcp://127.0.0.1:9", "progress": "tcp://127.0.0.1:9",
                                               "token": "x"}))
    assert branchpy(tcp_env, "status", "--no-start").returncode == 3
    assert branchpy(tcp_env, "status").returncode == 0


def test_tcp_bridge_round_trip(tcp_env):
    result = subprocess.run([str(BIN / "branchpy-telemetry-bridge")], env=tcp_env, capture_output=True,
                            text=True, timeout=60,
                            input='{"id": 1, "type": "telemetry.status"}\nnot json\n')
    assert result.returncode == 0, result.stderr
    replies = {m["id"]: m for m in map(json.loads, result.stdout.splitlines())}
    assert replies[1]["ok"] is True and replies[1]["payload"]["socket"].startswith("tcp://127.0.0.1:")
    assert replies[None]["payload"]["code"] == "malformed_request"
