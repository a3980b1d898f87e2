"""Delivery acceptance: four processes emit 5,000 events each while the spool
is rotated over the control socket every 200 ms and delivery runs keep going
(auto mode + `sync` in a loop, retention deleting delivered rotated files);
meanwhile an "extension" appends to its own JSONL folder and renames its file
every 250 lines, knowing nothing of our locks. Every one of the 20,000 spool
event ids and every extension event reaches the backend exactly once."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from branchpy_telemetry.client.contracts.event import EventRecord, event_encoder
from branchpy_telemetry.client.contracts.timewindow import format_ts, utcnow
from branchpy_telemetry.client.emitter.spool import list_spool_files
from branchpy_telemetry.client.emitter.stamping import new_event_id

from .delivery_env import (
    configure,
    run_cli,
    start_emitters,
    start_live_backend,
    stored_event_ids,
    wait_emitters,
)

WORKERS, PER_WORKER = 4, 5000
EXTENSION_EVENTS, EXTENSION_ROTATE_EVERY = 2000, 250


def write_like_the_extension(folder) -> list[str]:
    """Append lines to current.jsonl; every N lines rename it to archive-K.jsonl (no locks)."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    current = folder / "current.jsonl"
    for i in range(EXTENSION_EVENTS):
        rec = EventRecord(event_id=new_event_id(), ts=format_ts(utcnow()), category="feature",
                          source="extension", name="graph.open")
        with open(current, "ab") as fh:
            fh.write(event_encoder.encode(rec) + b"\n")
        ids.append(rec.event_id)
        if (i + 1) % EXTENSION_ROTATE_EVERY == 0:
            current.rename(folder / f"archive-{i // EXTENSION_ROTATE_EVERY}.jsonl")
        if i % 10 == 0:
            time.sleep(0.01)  # deliberate pause: spread over the emitters' run, so renames meet delivery runs
    return ids


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

    extension_ids: list[str] = []
    threads = [threading.Thread(target=rotate_loop), threading.Thread(target=sync_loop),
               threading.Thread(target=lambda: extension_ids.extend(
                   write_like_the_extension(paths.extension_dir)))]
    for thread in threads:
        thread.start()
    try:
        # each process pauses 20 ms every 50 events: ~2 s of emitting, overlapping many rotations
        procs = start_emitters(subprocess_env, tmp_path, WORKERS, PER_WORKER, pause_every_50=0.02)
        emitted = wait_emitters(procs, timeout=300)
        threads[2].join(180)
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
    assert len(extension_ids) == EXTENSION_EVENTS
    missing_ext = set(extension_ids) - set(stored)
    assert not missing_ext, f"{len(missing_ext)} extension event(s) never reached the backend"
    assert max(stored.values()) == 1 and len(stored) == len(emitted) + len(extension_ids)
    assert sum(syncs) >= 1
    # retention removed delivered rotated files (keep = 1s) without losing anything
    status = daemon.call("status")
    assert status["counters"]["uploaded"] == len(emitted) + len(extension_ids)
    assert len([p for p in list_spool_files(paths.spool_dir) if p.name != "events.jsonl"]) < sum(rotations)
