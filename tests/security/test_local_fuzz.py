"""100,000 malformed messages: 60,000 control frames to the daemon, 40,000 lines to the bridge.

Every one is answered with an error (the daemon: `malformed_request`,
`too_large`, `unknown_command` or `bad_arguments`; the bridge the same codes),
both processes keep answering valid requests in between and at the end, and
their peak memory (VmHWM) after a warm-up stays roughly flat.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import zmq

from branchpy_telemetry.client.contracts.limits import MAX_BRIDGE_LINE_BYTES, MAX_CONTROL_MESSAGE_BYTES

from .fuzz_inputs import malformed

DAEMON_MESSAGES = 60_000
BRIDGE_MESSAGES = 40_000
WARM_UP = 5_000
FLAT_MIB = 25  # peak RSS growth allowed after the warm-up
ERROR_CODES = {"malformed_request", "too_large", "unknown_command", "bad_arguments"}
BRIDGE = str(Path(sys.executable).parent / "branchpy-telemetry-bridge")


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmHWM:"))


@pytest.mark.slow
def test_60000_malformed_control_frames_are_each_answered_with_memory_flat(running_daemon):
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(running_daemon.paths.control_endpoint)
    codes: dict[str, int] = {}
    window, sent, answered, too_large = 200, 0, 0, 0
    messages = malformed(8, DAEMON_MESSAGES, {"v": 1, "id": "fuzz", "cmd": "status"},
                         oversized_every=6_000, oversize=MAX_CONTROL_MESSAGE_BYTES + 10)
    before = None
    try:
        for body in messages:
            frames = [b"", body] if sent % 7 else [b"", body, b"extra frame"]
            too_large += len(frames) == 2 and len(body) > MAX_CONTROL_MESSAGE_BYTES
            sock.send_multipart(frames)
            sent += 1
            while sent - answered >= window or (sent == DAEMON_MESSAGES and answered < sent):
                if not sock.poll(20_000, zmq.POLLIN):
                    pytest.fail(f"no answer to message {answered + 1} within 20 s")
                reply = json.loads(sock.recv_multipart()[-1])
                assert reply["ok"] is False, reply
                codes[reply["error"]["code"]] = codes.get(reply["error"]["code"], 0) + 1
                answered += 1
            if sent == WARM_UP:
                before = peak_rss_mib(running_daemon.proc.pid)
            if sent % 20_000 == 0:
                assert running_daemon.call("status")["pid"] == running_daemon.proc.pid
    finally:
        sock.close(linger=0)
        context.term()
    after = peak_rss_mib(running_daemon.proc.pid)
    print(f"\ndaemon: {answered:,} malformed frames answered {codes}; peak RSS {before:.1f} MiB after "
          f"{WARM_UP:,}, {after:.1f} MiB after {DAEMON_MESSAGES:,}")
    assert answered == DAEMON_MESSAGES and set(codes) <= ERROR_CODES
    assert codes["too_large"] == too_large > 0
    assert after - before < FLAT_MIB
    assert running_daemon.call("status")["pid"] == running_daemon.proc.pid


def test_40000_malformed_bridge_lines_are_each_answered_with_memory_flat(running_daemon, subprocess_env):
    proc = subprocess.Popen([BRIDGE], env=subprocess_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    answers: list[dict] = []
    seen = threading.Condition()

    def read_answers():
        for line in proc.stdout:
            with seen:
                answers.append(json.loads(line))
                seen.notify_all()

    def wait_for(n: int) -> None:
        with seen:
            assert seen.wait_for(lambda: len(answers) >= n, timeout=120), f"{len(answers)} of {n} answers"

    reader = threading.Thread(target=read_answers, daemon=True)
    reader.start()
    valid = {"id": "fuzz", "type": "telemetry.status"}
    expected, before = 0, None
    started = time.monotonic()
    for n, body in enumerate(malformed(9, BRIDGE_MESSAGES, valid, oversized_every=4_000,
                                       oversize=MAX_BRIDGE_LINE_BYTES + 10), start=1):
        line = body.replace(b"\n", b" ")
        proc.stdin.write(line + b"\n")
        expected += bool(line.strip())  # a blank line is skipped, as the protocol says
        if n % 10_000 == 0:
            proc.stdin.write(json.dumps({"id": f"alive-{n}", "type": "telemetry.status"}).encode() + b"\n")
            expected += 1
        if n % 1_000 == 0:
            proc.stdin.flush()
            wait_for(expected)  # keep the pipe from racing ahead of the bridge
        if n == WARM_UP:
            before = peak_rss_mib(proc.pid)
    proc.stdin.write(json.dumps({"id": "last", "type": "telemetry.status"}).encode() + b"\n")
    proc.stdin.flush()
    wait_for(expected + 1)
    after = peak_rss_mib(proc.pid)
    proc.stdin.close()
    assert proc.wait(120) == 0
    reader.join(10)
    proc.stdout.close()
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    by_id = {a["id"]: a for a in answers if isinstance(a.get("id"), str)}
    alive = [by_id[f"alive-{n}"] for n in (10_000, 20_000, 30_000, 40_000)] + [by_id["last"]]
    assert all(a["ok"] and a["payload"]["pid"] == running_daemon.proc.pid for a in alive)
    errors = [a for a in answers if not a.get("ok")]
    assert len(errors) == expected - 4 and len(answers) == expected + 1
    assert {a["payload"]["code"] for a in errors} <= ERROR_CODES
    assert sum(a["payload"]["code"] == "too_large" for a in errors) == BRIDGE_MESSAGES // 4_000
    assert "Traceback" not in stderr
    print(f"\nbridge: {len(errors):,} malformed lines answered in {time.monotonic() - started:.1f}s; "
          f"peak RSS {before:.1f} MiB after {WARM_UP:,}, {after:.1f} MiB after {BRIDGE_MESSAGES:,}")
    assert after - before < FLAT_MIB
