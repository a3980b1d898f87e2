"""Clients wait for each command as long as the daemon may take to answer it.

A rotation waits for the write in flight (the spool's lock, up to 30 s): a
client that gave it only the quick budget reported "daemon unavailable" while
the daemon was fine and about to answer.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from pathlib import Path

import pytest

from branchpy_telemetry.client.emitter.spool import ACTIVE_NAME
from branchpy_telemetry.client.thin.ipc import DEFAULT_RETRIES, DEFAULT_TIMEOUT

BIN = Path(sys.executable).parent
QUICK_BUDGET_S = DEFAULT_TIMEOUT * DEFAULT_RETRIES  # every try of a quick command, one after another

pytestmark = pytest.mark.slow  # holds the spool lock past the quick budget: about 17 s


def test_rotate_waiting_on_a_held_spool_lock_past_the_quick_budget_answers_in_cli_and_bridge(
        running_daemon, paths, subprocess_env):
    paths.spool_dir.mkdir(parents=True, exist_ok=True)
    active = paths.spool_dir / ACTIVE_NAME
    active.write_text('{"name": "held"}\n')
    writer = open(active, "rb")  # a writer stopped mid-write: it holds the active file's lock
    fcntl.flock(writer.fileno(), fcntl.LOCK_EX)
    with writer, subprocess.Popen(
            [str(BIN / "branchpy"), "telemetry", "rotate", "--json", "--no-start"], env=subprocess_env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as cli, subprocess.Popen(
            [str(BIN / "branchpy-telemetry-bridge"), "--no-start"], env=subprocess_env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as bridge:
        bridge.stdin.write(json.dumps({"id": "r", "type": "telemetry.rotate"}) + "\n")
        bridge.stdin.close()  # EOF: the bridge exits once its request is answered
        try:
            code = cli.wait(timeout=QUICK_BUDGET_S + 2)
        except subprocess.TimeoutExpired:
            code = None
        assert code is None, f"rotate gave up while the daemon was waiting for the lock: {cli.stderr.read()}"
        assert bridge.poll() is None, f"the bridge answered too early: {bridge.stdout.read()}"
        fcntl.flock(writer.fileno(), fcntl.LOCK_UN)  # the writer goes on: the rotation can proceed
        out, err = cli.communicate(timeout=60)
        assert cli.returncode == 0, err
        cli_result = json.loads(out)
        assert bridge.wait(timeout=60) == 0, bridge.stderr.read()
        [reply] = [json.loads(line) for line in bridge.stdout.read().splitlines()]
    assert reply["type"] == "telemetry.rotate.result" and reply["ok"] is True, reply
    # one of the two rotated the held file; the other found the spool empty afterwards
    assert sorted([cli_result["rotated"], reply["payload"]["rotated"]]) == [False, True]
    assert running_daemon.call("status")["pid"] == running_daemon.proc.pid
