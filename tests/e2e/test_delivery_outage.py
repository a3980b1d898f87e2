"""Delivery acceptance: backend down -> `upload --auto` exits 5 and keeps the
package (path printed); backend up -> the next `sync` delivers it; the
backend stores exactly the events emitted. Real backend, daemon and CLI."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from branchpy_telemetry.daemon.delivery.ledger import read_history

from .delivery_env import configure, dead_endpoint, emit_events, run_cli, start_live_backend, stored_event_ids


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    backend, key = start_live_backend(tmp_path_factory.mktemp("backend"))
    yield backend, key
    backend.stop()


def test_backend_down_upload_exits_5_keeps_the_package_and_next_sync_delivers_every_event_once(
        live, paths, subprocess_env, start_daemon, tmp_path):
    backend, key = live
    configure(paths.config_file, telemetry__endpoint=dead_endpoint(), telemetry__api_key=key)
    start_daemon("--idle-timeout", "0")
    emitted = emit_events(subprocess_env, tmp_path, 60, workers=2)

    down = run_cli(subprocess_env, "upload", "--auto", "--from", "1h")
    assert down.returncode == 5, down.stderr
    kept = re.search(r"kept at (\S+\.json)", down.stderr)
    assert kept, down.stderr
    assert Path(kept.group(1)).is_file() and Path(kept.group(1)).parent == paths.outbox_dir
    assert "cannot reach" in down.stderr  # the reason, not just a code

    assert run_cli(subprocess_env, "config", "set", "telemetry.endpoint", backend.api).returncode == 0
    up = run_cli(subprocess_env, "sync")
    assert up.returncode == 0, up.stderr
    assert not Path(kept.group(1)).exists()

    stored = Counter(i for i in stored_event_ids(backend) if i in set(emitted))
    assert sorted(stored) == sorted(emitted) and set(stored.values()) == {1}
    history = read_history(paths.ledger_file)
    assert history and all(r.outcome in ("delivered", "duplicate") for r in history)

    listing = run_cli(subprocess_env, "history")
    assert listing.returncode == 0 and history[0].package_id in listing.stdout


def test_sync_with_the_backend_down_exits_5_and_keeps_the_outbox(live, paths, subprocess_env, start_daemon,
                                                                 tmp_path):
    backend, key = live
    configure(paths.config_file, telemetry__endpoint=dead_endpoint(), telemetry__api_key=key)
    start_daemon("--idle-timeout", "0")
    emit_events(subprocess_env, tmp_path, 5)
    down = run_cli(subprocess_env, "sync")
    assert down.returncode == 5, down.stderr
    assert "wait in" in down.stderr and len(list(paths.outbox_dir.glob("*.json"))) == 1
