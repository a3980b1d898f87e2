"""The daemon's control socket, driven over real ZeroMQ sockets against a real daemon process."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid

import pytest
import zmq

from branchpy_telemetry.client.contracts.errors import DaemonUnavailableError

REPLY_TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory):
    """One daemon for the many garbage-frame cases (each case checks it still serves)."""
    from branchpy_telemetry.client.contracts.paths import resolve_paths
    from branchpy_telemetry.client.thin.daemon_launcher import wait_until_listening

    home = tmp_path_factory.mktemp("shared-daemon")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANCHPY_TELEMETRY")}
    env.pop("DO_NOT_TRACK", None)
    env["BRANCHPY_TELEMETRY_HOME"] = str(home)
    paths = resolve_paths(env)
    paths.log_dir.mkdir(parents=True)
    with open(paths.daemon_log, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "branchpy_telemetry.daemon.main",
                                 "--idle-timeout", "0"],
                                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        wait_until_listening(paths, proc, timeout=20)
        yield proc, paths
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def dealer_for(endpoint: str):
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return context, sock


@pytest.fixture
def raw_dealer(running_daemon):
    """A bare DEALER on the control socket: sends whatever frames a test wants."""
    context, sock = dealer_for(running_daemon.paths.control_endpoint)
    yield sock
    sock.close(linger=0)
    context.term()


def receive(sock: zmq.Socket) -> list[bytes]:
    if not sock.poll(REPLY_TIMEOUT_MS, zmq.POLLIN):
        pytest.fail("the daemon did not answer within 10s")
    return sock.recv_multipart()


def request_bytes(cmd: str, args=None, request_id: str | None = None) -> bytes:
    body = {"v": 1, "id": request_id or str(uuid.uuid4()), "cmd": cmd}
    if args is not None:
        body["args"] = args
    return json.dumps(body).encode()


GARBAGE = {
    "not_json": ([b"", b"\x00\xffnot json"], "malformed_request"),
    "empty_frame": ([b""], "malformed_request"),
    "nothing_after_delimiter": ([b"", b""], "malformed_request"),
    "two_body_frames": ([b"", b"{}", b"{}"], "malformed_request"),
    "json_array": ([b"", b"[1, 2, 3]"], "malformed_request"),
    "json_string": ([b"", b'"status"'], "malformed_request"),
    "missing_id": ([b"", b'{"v": 1, "cmd": "status"}'], "malformed_request"),
    "id_not_a_string": ([b"", b'{"v": 1, "id": 42, "cmd": "status"}'], "malformed_request"),
    "missing_cmd": ([b"", b'{"v": 1, "id": "a"}'], "malformed_request"),
    "cmd_not_a_string": ([b"", b'{"v": 1, "id": "a", "cmd": ["status"]}'], "malformed_request"),
    "args_not_an_object": ([b"", b'{"v": 1, "id": "a", "cmd": "status", "args": [1]}'], "malformed_request"),
    "wrong_protocol_version": ([b"", b'{"v": 99, "id": "a", "cmd": "status"}'], "malformed_request"),
    "unknown_field": ([b"", b'{"v": 1, "id": "a", "cmd": "status", "extra": 1}'], "malformed_request"),
    "huge_frame": ([b"", b'{"id": "' + b"x" * (2 * 1024 * 1024) + b'"}'], "too_large"),
    "nested_1000_deep": ([b"", b'{"v": 1, "id": "d", "cmd": "status", "args": {"a": '
                          + b"[" * 1000 + b"]" * 1000 + b"}}"], "malformed_request"),
    "unknown_command": ([b"", request_bytes("launch_missiles")], "unknown_command"),
    "unknown_argument": ([b"", request_bytes("status", {"verbose": True})], "bad_arguments"),
    "wrong_argument_type": ([b"", request_bytes("config.get", {"key": 5})], "bad_arguments"),
    "missing_argument": ([b"", request_bytes("config.set", {"key": "telemetry.mode"})], "bad_arguments"),
    "unknown_config_key": ([b"", request_bytes("config.get", {"key": "telemetry.nope"})],
                           "config_invalid"),
    "relative_export_output": ([b"", request_bytes("export", {"output": "rel.json"})], "bad_arguments"),
    "bad_export_window": ([b"", request_bytes("export", {"output": "/tmp/x.json", "from": "yesterday"})],
                          "bad_arguments"),
    "no_delimiter_not_json": ([b"garbage"], "malformed_request"),
}


@pytest.mark.parametrize("frames,code", GARBAGE.values(), ids=list(GARBAGE))
def test_garbage_request_gets_error_reply_with_code_and_daemon_keeps_serving(shared_daemon, frames, code):
    from branchpy_telemetry.client.thin.ipc import ControlClient

    proc, paths = shared_daemon
    context, sock = dealer_for(paths.control_endpoint)
    try:
        sock.send_multipart(frames)
        reply_frames = receive(sock)
    finally:
        sock.close(linger=0)
        context.term()
    reply = json.loads(reply_frames[-1])
    assert reply["v"] == 1
    assert reply["ok"] is False
    assert reply["error"]["code"] == code
    assert reply["error"]["message"]
    assert "Traceback" not in reply_frames[-1].decode(errors="replace")
    with ControlClient(paths.control_endpoint, timeout=10, retries=1) as client:
        assert client.call("status")["pid"] == proc.pid
    assert proc.poll() is None


def test_reply_keeps_the_envelope_shape_of_the_request(running_daemon, raw_dealer):
    raw_dealer.send_multipart([request_bytes("status", request_id="no-delimiter")])
    frames = receive(raw_dealer)
    assert len(frames) == 1 and json.loads(frames[0])["id"] == "no-delimiter"
    raw_dealer.send_multipart([b"", request_bytes("status", request_id="with-delimiter")])
    frames = receive(raw_dealer)
    assert frames[0] == b"" and json.loads(frames[1])["id"] == "with-delimiter"


def test_error_reply_echoes_request_id_when_it_could_be_read(raw_dealer):
    raw_dealer.send_multipart([b"", request_bytes("no_such_command", request_id="abc-123")])
    reply = json.loads(receive(raw_dealer)[1])
    assert reply == {"v": 1, "id": "abc-123", "ok": False, "error": reply["error"]}
    assert reply["error"]["code"] == "unknown_command"
    assert "status" in reply["error"]["hint"]


ECHOED = {
    "wrong_protocol_version": b'{"v": 99, "id": "echo-1", "cmd": "status"}',
    "unknown_field": b'{"v": 1, "id": "echo-2", "cmd": "status", "extra": 1}',
    "args_not_an_object": b'{"v": 1, "id": "echo-3", "cmd": "status", "args": [1]}',
    "missing_cmd": b'{"v": 1, "id": "echo-4"}',
    "nested_100_deep": b'{"v": 1, "id": "echo-5", "cmd": "status", "args": {"a": '
                       + b"[" * 100 + b"]" * 100 + b"}}",
    # too deep for any JSON decoder: the id is read when it comes first, as the bridge reads it
    "nested_1000_deep_id_first": b'{"id": "echo-6", "v": 1, "cmd": "status", "args": {"a": '
                                 + b"[" * 1000 + b"]" * 1000 + b"}}",
}


@pytest.mark.parametrize("body", ECHOED.values(), ids=list(ECHOED))
def test_malformed_request_whose_id_could_be_read_gets_it_back(shared_daemon, body):
    _, paths = shared_daemon
    context, sock = dealer_for(paths.control_endpoint)
    try:
        sock.send_multipart([b"", body])
        reply = json.loads(receive(sock)[-1])
    finally:
        sock.close(linger=0)
        context.term()
    assert reply["error"]["code"] == "malformed_request"
    assert reply["id"] == body.split(b'"id": "')[1].split(b'"')[0].decode()


def test_req_socket_client_gets_answers_too(running_daemon):
    context = zmq.Context()
    sock = context.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(running_daemon.paths.control_endpoint)
        sock.send(request_bytes("status", request_id="req-1"))
        reply = json.loads(receive(sock)[0])
        assert reply["ok"] is True and reply["id"] == "req-1"
    finally:
        sock.close(linger=0)
        context.term()


def test_resent_request_id_is_answered_once_not_run_twice(running_daemon, raw_dealer):
    body = request_bytes("emit", {"category": "command", "name": "analyze"}, request_id="resend-1")
    raw_dealer.send_multipart([b"", body])
    first = json.loads(receive(raw_dealer)[1])
    raw_dealer.send_multipart([b"", body])
    second = json.loads(receive(raw_dealer)[1])
    assert first["ok"] is True and second == first
    lines = running_daemon.paths.active_spool.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["event_id"] == first["result"]["event_id"]


def test_sigterm_stops_cleanly_and_removes_socket_files(running_daemon):
    paths = running_daemon.paths
    assert paths.control_socket.exists() and paths.progress_socket.exists()
    assert running_daemon.terminate() == 0
    assert not paths.control_socket.exists()
    assert not paths.progress_socket.exists()
    log = running_daemon.log_text()
    assert "daemon.stopped" in log and "Traceback" not in log


def test_sigint_stops_cleanly_too(running_daemon):
    import signal

    running_daemon.proc.send_signal(signal.SIGINT)
    assert running_daemon.proc.wait(10) == 0
    assert not running_daemon.paths.control_socket.exists()


def test_shutdown_command_replies_then_stops(running_daemon):
    result = running_daemon.call("shutdown")
    assert result == {"stopping": True, "pid": running_daemon.proc.pid}
    assert running_daemon.proc.wait(10) == 0
    assert not running_daemon.paths.control_socket.exists()


def test_second_daemon_is_refused_with_a_clear_message_and_exit_3(running_daemon, subprocess_env):
    second = subprocess.run([str(running_daemon.proc.args[0])], env=subprocess_env,
                            capture_output=True, text=True, timeout=30)
    assert second.returncode == 3
    assert "already running" in second.stderr
    assert f"pid {running_daemon.proc.pid}" in second.stderr
    assert running_daemon.call("status")["pid"] == running_daemon.proc.pid  # the first one is untouched


def test_socket_dir_is_0700_and_sockets_are_0600(running_daemon):
    paths = running_daemon.paths
    assert stat.S_IMODE(paths.run_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(paths.control_socket.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.progress_socket.stat().st_mode) == 0o600
    assert stat.S_ISSOCK(paths.control_socket.stat().st_mode)


def test_stale_socket_files_from_a_crash_are_replaced(start_daemon, paths):
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    paths.control_socket.write_text("left over by a crashed daemon")
    paths.progress_socket.write_text("left over")
    daemon = start_daemon("--idle-timeout", "0")
    assert daemon.call("status")["pid"] == daemon.proc.pid
    assert stat.S_ISSOCK(paths.control_socket.stat().st_mode)


def test_loose_run_dir_permissions_are_tightened(start_daemon, paths):
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    paths.run_dir.chmod(0o755)
    start_daemon("--idle-timeout", "0")
    assert stat.S_IMODE(paths.run_dir.stat().st_mode) == 0o700


def test_manual_mode_daemon_exits_after_idle_timeout(start_daemon):
    daemon = start_daemon("--idle-timeout", "0.5")
    assert daemon.proc.wait(15) == 0
    assert "daemon.idle_exit" in daemon.log_text()
    assert not daemon.paths.control_socket.exists()


def test_requests_keep_a_manual_daemon_alive_past_its_idle_timeout(start_daemon):
    import time

    daemon = start_daemon("--idle-timeout", "1")
    deadline = time.monotonic() + 2.0  # twice the idle timeout, kept busy
    while time.monotonic() < deadline:
        assert daemon.call("status")["mode"] == "manual"
        time.sleep(0.3)  # deliberate pause: requests spaced out over twice the idle timeout
    assert daemon.proc.poll() is None
    assert daemon.proc.wait(15) == 0  # and it still idles out afterwards


def test_auto_mode_daemon_does_not_idle_out(start_daemon, paths):
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text('[telemetry]\nmode = "auto"\n')
    daemon = start_daemon("--idle-timeout", "0.3")
    with pytest.raises(subprocess.TimeoutExpired):
        daemon.proc.wait(1.5)
    assert daemon.call("status")["mode"] == "auto"
    assert daemon.call("status")["idle_timeout_s"] is None


def test_daemon_that_cannot_create_its_state_dir_exits_1_with_the_reason(subprocess_env, telemetry_home):
    (telemetry_home / "state").write_text("a file where the state folder should be")
    result = subprocess.run([sys.executable, "-m", "branchpy_telemetry.daemon.main"], env=subprocess_env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "cannot start" in result.stderr
    assert "Traceback" not in result.stderr


def test_daemon_with_an_invalid_config_file_exits_1_naming_the_key(subprocess_env, paths):
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text("[telemetry]\nmood = 'happy'\n")
    result = subprocess.run([sys.executable, "-m", "branchpy_telemetry.daemon.main"], env=subprocess_env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "telemetry.mood" in result.stderr


def test_control_client_without_daemon_raises_daemon_unavailable_after_retries(paths):
    from branchpy_telemetry.client.thin.ipc import ControlClient

    with ControlClient(paths.control_endpoint, timeout=0.2, retries=2) as client:
        with pytest.raises(DaemonUnavailableError) as caught:
            client.call("status")
    assert "after 2 tries" in caught.value.message
    assert not isinstance(caught.value, zmq.ZMQError)


def test_usage_error_exits_2(subprocess_env):
    result = subprocess.run([sys.executable, "-m", "branchpy_telemetry.daemon.main", "--idle-timeout", "x"],
                            env=subprocess_env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2


def test_no_socket_file_is_group_or_world_accessible_while_running(running_daemon):
    for entry in os.scandir(running_daemon.paths.run_dir):
        assert stat.S_IMODE(entry.stat().st_mode) & 0o077 == 0, entry.name
