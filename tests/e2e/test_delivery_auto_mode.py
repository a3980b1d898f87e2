"""Delivery acceptance: auto mode with a 10 s interval, left running for a
minute against a live backend while events are emitted, delivers all of them
on its own; with --dry-run it sends nothing and records what it would have
sent (ledger entries marked dry_run)."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from branchpy_telemetry.daemon.delivery.ledger import read_history

from ..daemon.recording_server import RecordingServer
from ..polling import wait_until
from .delivery_env import configure, emit_events, run_cli, start_live_backend, stored_event_ids

pytestmark = pytest.mark.slow  # a daemon left running in auto mode for a minute, and for 12 s


@pytest.fixture
def live(tmp_path):
    backend, key = start_live_backend(tmp_path / "backend")
    yield backend, key
    backend.stop()


def test_auto_mode_10s_for_a_minute_delivers_every_event_emitted_meanwhile(
        live, paths, subprocess_env, start_daemon, tmp_path):
    backend, key = live
    configure(paths.config_file, telemetry__endpoint=backend.api, telemetry__api_key=key)
    daemon = start_daemon("--idle-timeout", "0")
    switched = run_cli(subprocess_env, "mode", "auto", "--interval", "10s")
    assert switched.returncode == 0, switched.stderr
    assert daemon.call("status")["auto"]["scheduled"] is True

    emitted: list[str] = []
    started = time.monotonic()
    while time.monotonic() - started < 55:
        emitted += emit_events(subprocess_env, tmp_path, 20)
        time.sleep(4)  # deliberate pause: events emitted all through the minute the daemon runs
    everything = set(emitted)

    def all_stored():
        return everything <= set(stored_event_ids(backend))

    wait_until(all_stored, timeout=30, interval=0.5, what="auto mode's delivery of every event")
    stored = Counter(i for i in stored_event_ids(backend) if i in everything)
    assert set(stored.values()) == {1} and len(stored) == len(emitted)

    # The backend commits the last package before the daemon reads its answer and counts it:
    # wait for the run in flight to finish, then the daemon's counters must match exactly.
    def counted():
        status = daemon.call("status")
        return status if status["counters"]["uploaded"] >= len(emitted) else None

    status = wait_until(counted, timeout=30, interval=0.5,
                        what="the daemon's count of what the backend stored")
    assert status["auto"]["runs"]["runs"] >= 5 and status["auto"]["runs"]["failures"] == 0
    assert status["auto"]["last_run"]["ok"] is True and status["auto"]["next_run"]
    assert status["counters"]["uploaded"] == len(emitted) and status["outbox"]["packages"] == 0


def test_auto_mode_dry_run_sends_nothing_and_records_what_it_would_have_sent(
        paths, subprocess_env, start_daemon, tmp_path):
    server = RecordingServer().start()
    try:
        configure(paths.config_file, telemetry__endpoint=server.base_url)
        daemon = start_daemon("--idle-timeout", "0")
        emitted = emit_events(subprocess_env, tmp_path, 25)
        assert run_cli(subprocess_env, "mode", "auto", "--interval", "10s", "--dry-run").returncode == 0

        def ran():
            runs = daemon.call("status")["auto"]["runs"]
            return runs.get("runs", 0) >= 1

        assert wait_until(ran, timeout=30)
        assert server.requests == []
        records = read_history(paths.ledger_file)
        assert records and all(r.dry_run and r.outcome == "dry_run" for r in records)
        assert sum(r.events for r in records) == len(emitted)
        assert len(list(paths.outbox_dir.glob("*.json"))) == len(records)  # waiting, not sent

        shown = run_cli(subprocess_env, "history")
        assert "dry run" in shown.stdout

        # Dry run off: the recorded packages are what gets sent, each once.
        assert run_cli(subprocess_env, "mode", "auto", "--interval", "10s").returncode == 0
        assert run_cli(subprocess_env, "sync").returncode == 0
        assert sorted(server.stored) == sorted(r.package_id for r in records)
    finally:
        server.stop()
