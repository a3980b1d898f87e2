"""The auto-mode job inside a real daemon process: systemd notifications
(READY after bind, WATCHDOG from the loop, STOPPING on SIGTERM), auto mode
scheduled from the config at start-up, and a failing run that is counted and
never kills the daemon."""

from __future__ import annotations

import socket
import time

import pytest

from .test_checkpoints import append


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    yield sock, str(path)
    sock.close()


def receive_until(sock, wanted: str, timeout: float = 10.0) -> list[str]:
    got, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        got.append(sock.recv(4096).decode())
        if any(wanted in message for message in got):
            return got
    raise AssertionError(f"no {wanted!r} in {got}")


def test_daemon_sends_ready_watchdog_pings_and_stopping_to_systemd(notify_socket, start_daemon,
                                                                  subprocess_env):
    sock, path = notify_socket
    subprocess_env.update({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    daemon = start_daemon("--idle-timeout", "0")
    assert any(m.startswith("READY=1") for m in receive_until(sock, "READY=1"))
    pings = [m for m in receive_until(sock, "WATCHDOG=1") if m == "WATCHDOG=1"]
    pings += [m for m in receive_until(sock, "WATCHDOG=1") if m == "WATCHDOG=1"]
    assert len(pings) >= 2  # keeps pinging from the loop while idle
    assert daemon.terminate() == 0
    assert any("STOPPING=1" in m for m in receive_until(sock, "STOPPING=1"))


def test_auto_mode_in_the_config_is_scheduled_at_start_up(paths, start_daemon):
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text('[telemetry]\nmode = "auto"\n[telemetry.auto]\ninterval = "2h"\n')
    status = start_daemon("--idle-timeout", "0.2").call("status")
    assert status["mode"] == "auto" and status["auto"]["scheduled"] and status["auto"]["next_run"]
    assert status["idle_timeout_s"] is None  # auto mode never idles out


def test_a_failing_run_is_reported_and_counted_and_the_daemon_keeps_serving(paths, start_daemon):
    from branchpy_telemetry.client.contracts.errors import StorageError

    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text("[telemetry.auto]\ndry_run = true\n")  # runs record, never send
    daemon = start_daemon("--idle-timeout", "0")
    append(paths.active_spool, 2)
    paths.checkpoints_file.mkdir(parents=True)  # the checkpoints cannot be written
    with pytest.raises(StorageError, match="checkpoints"):
        daemon.call("sync", timeout=30)
    status = daemon.call("status")
    assert status["auto"]["runs"]["failures"] == 1 and status["auto"]["last_run"]["ok"] is False
    assert status["auto"]["last_run"]["error_code"] == "storage_error"
    paths.checkpoints_file.rmdir()
    report = daemon.call("sync", timeout=30)
    assert (report["exported_events"], report["dry_run_recorded"], report["outbox_packages"]) == (2, 1, 1)
    assert daemon.proc.poll() is None


@pytest.mark.slow
def test_sigterm_during_a_hanging_scheduled_upload_stops_within_seconds_and_keeps_the_package(
        paths, start_daemon):
    from . import recording_server as rs

    server = rs.RecordingServer().start()
    try:
        server.script(rs.Reply(201, {}, hang_s=120))  # the backend never answers
        paths.config_file.parent.mkdir(parents=True, exist_ok=True)
        paths.config_file.write_text(f'[telemetry]\nmode = "auto"\nendpoint = "{server.base_url}"\n'
                                     '[telemetry.auto]\ninterval = "10s"\n')
        append(paths.active_spool, 3)
        daemon = start_daemon("--idle-timeout", "0")
        server.wait_for_requests(1, timeout=30)  # the first scheduled run is stuck in its upload
        started = time.monotonic()
        assert daemon.terminate(timeout=20) == 0
        assert time.monotonic() - started < 12  # bounded: the stuck run is abandoned, not awaited
        assert len(list(paths.outbox_dir.glob("*.json"))) == 1  # kept for the next run
        assert "auto.run_abandoned_at_shutdown" in daemon.log_text()
    finally:
        server.stop()
