"""Exactly once through a SIGKILL: a real process draining the outbox is killed
mid-upload; the next run delivers what is left and the server stores it once."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from branchpy_telemetry.client.contracts.config import load_config
from branchpy_telemetry.daemon.delivery.deliver import send_outbox
from branchpy_telemetry.daemon.delivery.ledger import read_history
from branchpy_telemetry.daemon.delivery.outbox import Outbox

from . import recording_server as rs

MB = 1024 * 1024

DRAIN = textwrap.dedent("""
    import sys
    from branchpy_telemetry.client.contracts.config import load_config
    from branchpy_telemetry.client.contracts.paths import resolve_paths
    from branchpy_telemetry.daemon.delivery.deliver import send_outbox
    from branchpy_telemetry.daemon.delivery.outbox import Outbox
    paths = resolve_paths()
    config = load_config(None, env={}, overrides={"telemetry.endpoint": sys.argv[1]})
    send_outbox(Outbox(paths, 10 * 1024 * 1024), config, paths.ledger_file, read_timeout=60)
""")


@pytest.fixture
def server():
    srv = rs.RecordingServer().start()
    yield srv
    srv.stop()


def _kill_drain_when(server, subprocess_env, n_requests: int) -> None:
    proc = subprocess.Popen([sys.executable, "-c", DRAIN, server.base_url], env=subprocess_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        server.wait_for_requests(n_requests, timeout=30)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stderr.close()


@pytest.mark.parametrize("stored_before_kill", [False, True], ids=["lost-request", "lost-response"])
def test_sigkill_mid_upload_then_next_run_stores_every_package_once(server, paths, subprocess_env,
                                                                     stored_before_kill):
    outbox = Outbox(paths, 10 * MB)
    entries = [outbox.add(rs.make_package_bytes(3)) for _ in range(3)]

    def hang(request):  # the second package: stored (or not), then the answer never comes
        if stored_before_kill:
            server.accept(request)
        return rs.Reply(201, {}, hang_s=60)

    server.script(server.accept, hang)
    _kill_drain_when(server, subprocess_env, 2)
    assert [e.name for e in outbox.pending()] == [e.name for e in entries[1:]]  # first one done

    config = load_config(None, env={}, overrides={"telemetry.endpoint": server.base_url})
    report = send_outbox(Outbox(paths, 10 * MB), config, paths.ledger_file)
    assert outbox.pending() == []
    assert sorted(server.stored) == sorted(e.package_id for e in entries)  # each stored exactly once
    assert (report.delivered, report.duplicates) == ((1, 1) if stored_before_kill else (2, 0))
    history = read_history(paths.ledger_file)
    assert sorted(r.package_id for r in history) == sorted(e.package_id for e in entries)
