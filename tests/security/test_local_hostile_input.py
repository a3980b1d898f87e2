"""A hostile local client cannot take the daemon or the bridge down.

Each attack is one message: JSON nested far past `MAX_JSON_DEPTH`, a frame
or line past its byte limit, invalid UTF-8. Each gets a clear error
(`malformed_request`, or `too_large` naming the limit) and the process
answers the next valid request. Before the limits, a 2 KB request of
arrays nested 1,000 deep ended the daemon and the bridge (RecursionError),
and a control request over 1 MiB came back as "daemon unavailable" after 15 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import zmq

from branchpy_telemetry.client.contracts.errors import TooLargeError
from branchpy_telemetry.client.contracts.limits import (
    MAX_BRIDGE_LINE_BYTES,
    MAX_CONTROL_FRAME_BYTES,
    MAX_CONTROL_MESSAGE_BYTES,
    MAX_JSON_DEPTH,
)

BRIDGE = str(Path(sys.executable).parent / "branchpy-telemetry-bridge")
REPLY_TIMEOUT_MS = 10_000


def nested(depth: int, kind: str = "arrays") -> bytes:
    if kind == "objects":
        return b'{"a":' * depth + b"0" + b"}" * depth
    return b"[" * depth + b"]" * depth


def control_request(args_json: bytes, request_id: str = "hostile") -> bytes:
    head = b'{"v": 1, "id": "' + request_id.encode() + b'", "cmd": "status", "args": {"x": '
    return head + args_json + b"}}"


@pytest.fixture
def dealer(running_daemon):
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(running_daemon.paths.control_endpoint)
    yield sock
    sock.close(linger=0)
    context.term()


def ask(sock: zmq.Socket, body: bytes) -> dict:
    sock.send_multipart([b"", body])
    if not sock.poll(REPLY_TIMEOUT_MS, zmq.POLLIN):
        pytest.fail("the daemon did not answer within 10 s")
    return json.loads(sock.recv_multipart()[-1])


def assert_daemon_serves(daemon) -> None:
    assert daemon.proc.poll() is None, daemon.log_text()[-2000:]
    assert daemon.call("status")["pid"] == daemon.proc.pid


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 100_000])
@pytest.mark.parametrize("kind", ["arrays", "objects"])
def test_deeply_nested_control_request_is_malformed_and_the_daemon_lives(running_daemon, dealer, depth, kind):
    reply = ask(dealer, control_request(nested(depth, kind)))
    assert reply["ok"] is False
    assert reply["error"]["code"] == "malformed_request"
    assert f"deeper than {MAX_JSON_DEPTH} levels" in reply["error"]["message"]
    assert reply["error"]["details"] == {"limit_depth": MAX_JSON_DEPTH}
    assert_daemon_serves(running_daemon)


def test_nesting_at_the_limit_is_accepted(running_daemon, dealer):
    # depth 1 is the request object, 2 its args: x may nest MAX_JSON_DEPTH - 2 more
    reply = ask(dealer, control_request(nested(MAX_JSON_DEPTH - 2)))
    assert reply["error"]["code"] == "bad_arguments"  # parsed: status takes no argument x


def test_control_request_over_the_limit_is_answered_too_large_with_the_limit(running_daemon, dealer):
    body = control_request(b'"' + b"x" * MAX_CONTROL_MESSAGE_BYTES + b'"')
    assert len(body) < MAX_CONTROL_FRAME_BYTES
    reply = ask(dealer, body)
    assert reply["error"]["code"] == "too_large"
    assert reply["error"]["details"] == {"limit_bytes": MAX_CONTROL_MESSAGE_BYTES, "size_bytes": len(body)}
    assert f"{MAX_CONTROL_MESSAGE_BYTES:,}" in reply["error"]["message"]
    assert_daemon_serves(running_daemon)


def test_frame_past_the_socket_limit_drops_that_peer_only(running_daemon, dealer):
    dealer.send_multipart([b"", b"x" * (MAX_CONTROL_FRAME_BYTES + 1)])
    assert not dealer.poll(500, zmq.POLLIN)  # libzmq disconnected it: nothing buffered, nothing answered
    assert_daemon_serves(running_daemon)


def test_control_client_refuses_an_oversized_request_at_once(running_daemon):
    from branchpy_telemetry.client.thin.ipc import open_control_client

    started = time.monotonic()
    with open_control_client(running_daemon.paths, timeout=5, retries=3) as client:
        with pytest.raises(TooLargeError) as caught:
            client.call("config.set", {"key": "telemetry.endpoint", "value": "x" * MAX_CONTROL_MESSAGE_BYTES})
    assert time.monotonic() - started < 1.0
    assert caught.value.code == "too_large"
    assert caught.value.details["limit_bytes"] == MAX_CONTROL_MESSAGE_BYTES


def test_an_unreadable_request_is_answered_to_its_sender_not_after_a_timeout(running_daemon):
    """The daemon cannot echo the id of a request it could not decode; the
    client takes that id-less error as the answer (one request in flight)."""
    from branchpy_telemetry.client.thin.ipc import ControlClient

    class Garbling(ControlClient):
        def _try_once(self, payload, *rest):
            return super()._try_once(payload + b"]", *rest)  # not JSON any more

    started = time.monotonic()
    with Garbling(running_daemon.paths.control_endpoint, timeout=5, retries=3) as client:
        reply = client.request("status")
    assert time.monotonic() - started < 2.0
    assert reply.ok is False and reply.error.code == "malformed_request"


def run_bridge(lines: list[bytes], env: dict) -> tuple[list[dict], str, int]:
    result = subprocess.run([BRIDGE], input=b"\n".join(lines) + b"\n", env=env, capture_output=True,
                            timeout=120)
    out = [json.loads(line) for line in result.stdout.splitlines()]
    return out, result.stderr.decode(errors="replace"), result.returncode


def status_line(message_id) -> bytes:
    return json.dumps({"id": message_id, "type": "telemetry.status"}).encode()


def test_bridge_answers_nested_oversized_and_invalid_lines_and_keeps_serving(running_daemon, subprocess_env):
    lines = [
        status_line("before"),
        b'{"id": "deep", "type": "telemetry.status", "payload": {"x": ' + nested(100_000) + b"}}",
        nested(1_000, "objects"),
        b'{"id": "big", "type": "telemetry.status", "payload": {"x": "' + b"y" * MAX_BRIDGE_LINE_BYTES
        + b'"}}',
        b"z" * (5 * MAX_BRIDGE_LINE_BYTES),
        b'{"id": "utf8", "type": "telemetry.status", "payload": {"x": "\xff\xfe"}}',
        status_line("after"),
    ]
    out, stderr, code = run_bridge(lines, subprocess_env)
    assert code == 0, stderr
    assert "Traceback" not in stderr
    by_id = {m["id"]: m for m in out}
    assert by_id["before"]["ok"] is True and by_id["after"]["ok"] is True
    assert by_id["after"]["payload"]["pid"] == running_daemon.proc.pid
    assert by_id["deep"]["payload"]["code"] == "malformed_request"
    assert f"deeper than {MAX_JSON_DEPTH} levels" in by_id["deep"]["payload"]["message"]
    assert by_id["big"]["payload"]["code"] == "too_large"  # its id is read from the line's start
    assert f"{MAX_BRIDGE_LINE_BYTES:,}" in by_id["big"]["payload"]["message"]
    assert by_id["utf8"]["ok"] is False and by_id["utf8"]["payload"]["code"] == "malformed_request"
    anonymous = sorted(m["payload"]["code"] for m in out if m["id"] is None)
    assert anonymous == ["malformed_request", "too_large"]
    assert len(out) == 7


def test_bridge_request_that_grows_past_the_control_limit_is_answered_too_large(running_daemon,
                                                                                subprocess_env):
    """A line at the bridge's limit, once wrapped in a control request, is over the daemon's."""
    from branchpy_telemetry.client.contracts.protocol import Request, encoder

    def line_for(value: str) -> bytes:
        return json.dumps({"id": "edge", "type": "telemetry.setConfig",
                           "payload": {"key": "telemetry.endpoint", "value": value}},
                          separators=(",", ":")).encode()

    value = "v" * (MAX_BRIDGE_LINE_BYTES - len(line_for("")))
    line = line_for(value)
    assert len(line) == MAX_BRIDGE_LINE_BYTES
    request = encoder.encode(Request(id=str(uuid.uuid4()), cmd="config.set",
                                     args={"key": "telemetry.endpoint", "value": value}))
    assert len(request) > MAX_CONTROL_MESSAGE_BYTES
    out, stderr, code = run_bridge([line, status_line("after")], subprocess_env)
    assert code == 0, stderr
    by_id = {m["id"]: m for m in out}
    assert by_id["edge"]["ok"] is False and by_id["edge"]["payload"]["code"] == "too_large"
    assert by_id["after"]["ok"] is True
