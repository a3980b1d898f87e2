"""Acceptance (issue 4): four processes emit 5,000 events each while the spool
is rotated over the control socket every 200 ms and delivery runs keep going
(auto mode + `sync` in a loop, retention deleting delivered rotated files);
every one of the 20,000 event ids reaches the backend exactly once."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from branchpy_telemetry.client.spool import list_spool_files

from .delivery_env import (
    configure,
    run_cli,
    start_emitters,
    start_live_backend,
    stored_event_ids,
    wait_emitters,
)

WORKERS, PER_WORKER = 4, 5000


@pytest.fixture
def live(tmp_path):
    backend, key = start_live_backend(tmp_path / "backend")
    yield backend, key
    backend.stop()


def test_20000_events_under_rotation_every_200ms_reach_the_backend_exactly_once(
        live, paths, subprocess_env, start_daemon, tmp_path):
    backend, key = live
    configure(paths.config_file, telemetry__endpoint=backend.api, telemetry__api_key=key,
              telemetry__mode="auto", telemetry__auto__interval="10s", telemetry__retention__keep="1s")
    daemon = start_daemon("--idle-timeout", "0")
    stop = threading.Event()
    rotations, syncs, errors = [], [], []

    def rotate_loop():
        while not stop.wait(0.2):
            try:
                rotations.append(daemon.call("rotate", timeout=30)["rotated"])
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(repr(exc))

    def sync_loop():
        while not stop.wait(0.5):
            try:
                syncs.append(daemon.call("sync", timeout=120)["delivered"])
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))

    threads = [threading.Thread(target=rotate_loop), threading.Thread(target=sync_loop)]
    for thread in threads:
        thread.start()
    try:
        emitted = wait_emitters(start_emitters(subprocess_env, tmp_path, WORKERS, PER_WORKER), timeout=300)
    finally:
        stop.set()
        for thread in threads:
            thread.join(180)
    assert not errors, errors[:3]
    assert sum(rotations) >= 5, rotations  # the spool really was rotated while events were written

    final = run_cli(subprocess_env, "sync", timeout=300)
    assert final.returncode == 0, final.stderr

    stored = Counter(stored_event_ids(backend))
    assert len(emitted) == WORKERS * PER_WORKER == len(set(emitted))
    missing = set(emitted) - set(stored)
    assert not missing, f"{len(missing)} event(s) never reached the backend"
    assert max(stored.values()) == 1 and len(stored) == len(emitted)
    assert sum(syncs) >= 1
    # retention removed delivered rotated files (keep = 1s) without losing anything
    status = daemon.call("status")
    assert status["counters"]["uploaded"] == len(emitted)
    assert len([p for p in list_spool_files(paths.spool_dir) if p.name != "events.jsonl"]) < sum(rotations)
