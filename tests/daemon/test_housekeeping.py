"""Housekeeping: rotation and retention happen between deliveries too, in every mode."""

from __future__ import annotations

import os
import threading
import time

from branchpy_telemetry.client.config import config_from_tree
from branchpy_telemetry.client.emitter import Emitter
from branchpy_telemetry.client.spool import ACTIVE_NAME, list_spool_files, rotate_spool
from branchpy_telemetry.daemon.housekeeping import run_housekeeping

from ..polling import wait_until

SMALL_FILES = {"telemetry": {"rotation": {"max_file_mb": 0.001}}}  # about 1 KB


def _emit(paths, n: int) -> None:
    emitter = Emitter(paths)
    for i in range(n):
        assert emitter.emit("command", "analyze", duration_ms=float(i))
    emitter.close()


def test_an_oversized_active_file_is_rotated(paths):
    _emit(paths, 20)
    assert run_housekeeping(paths, config_from_tree(SMALL_FILES), threading.Lock()) is True
    names = [p.name for p in list_spool_files(paths.spool_dir)]
    assert len(names) == 1 and names[0] != ACTIVE_NAME


def test_a_turn_is_skipped_while_a_delivery_run_holds_the_lock(paths):
    _emit(paths, 20)
    lock = threading.Lock()
    with lock:
        assert run_housekeeping(paths, config_from_tree(SMALL_FILES), lock) is False
    assert [p.name for p in list_spool_files(paths.spool_dir)] == [ACTIVE_NAME]


def test_manual_mode_retention_deletes_rotated_files_older_than_keep(paths):
    _emit(paths, 3)
    old = rotate_spool(paths.spool_dir)
    _emit(paths, 3)
    recent = rotate_spool(paths.spool_dir)
    month_ago = time.time() - 30 * 86400
    os.utime(old, (month_ago, month_ago))
    config = config_from_tree({"telemetry": {"mode": "manual", "retention": {"keep": "14d"}}})
    assert run_housekeeping(paths, config, threading.Lock())
    assert not old.exists() and recent.exists()


def test_a_manual_mode_daemon_rotates_by_size_without_any_delivery(paths, start_daemon):
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text("[telemetry.rotation]\nmax_file_mb = 0.001\n")
    daemon = start_daemon("--idle-timeout", "0", "--housekeeping-interval", "0.2")
    _emit(paths, 20)
    wait_until(lambda: any(p.name != ACTIVE_NAME for p in list_spool_files(paths.spool_dir)), timeout=20,
               what=lambda: "the daemon's rotation of the oversized spool file:\n" + daemon.log_text())
    assert daemon.call("status")["mode"] == "manual"
