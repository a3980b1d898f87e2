"""Housekeeping: rotation and retention happen between deliveries too, in every mode."""

from __future__ import annotations

import os
import time

from branchpy_telemetry.client.contracts.config import config_from_tree
from branchpy_telemetry.client.emitter.emit import Emitter
from branchpy_telemetry.client.emitter.spool import ACTIVE_NAME, list_spool_files, rotate_spool
from branchpy_telemetry.daemon.delivery.delivery_lock import DeliveryLock
from branchpy_telemetry.daemon.scheduling.housekeeping import run_housekeeping

from ..polling import poll, wait_until

SMALL_FILES = {"telemetry": {"rotation": {"max_file_mb": 0.001}}}  # about 1 KB


def _emit(paths, n: int) -> None:
    emitter = Emitter(paths)
    for i in range(n):
        assert emitter.emit("command", "analyze", duration_ms=float(i))
    emitter.close()


def _wait_for_a_rotated_file(paths, timeout: float = 20.0) -> bool:
    """Poll the spool (every 50 ms, up to `timeout` seconds) until a rotated file is there."""
    return poll(lambda: any(p.name != ACTIVE_NAME for p in list_spool_files(paths.spool_dir)),
                timeout=timeout)


def test_an_oversized_active_file_is_rotated(paths):
    _emit(paths, 20)
    assert run_housekeeping(paths, config_from_tree(SMALL_FILES), DeliveryLock()) is True
    names = [p.name for p in list_spool_files(paths.spool_dir)]
    assert len(names) == 1 and names[0] != ACTIVE_NAME


def test_a_turn_is_skipped_while_a_delivery_run_holds_the_lock(paths):
    _emit(paths, 20)
    lock = DeliveryLock()
    with lock.held("sync"):
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
    assert run_housekeeping(paths, config, DeliveryLock())
    assert not old.exists() and recent.exists()


def test_a_manual_mode_daemon_rotates_by_size_without_any_delivery(paths, start_daemon):
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text("[telemetry.rotation]\nmax_file_mb = 0.001\n")
    daemon = start_daemon("--idle-timeout", "0", "--housekeeping-interval", "0.2")
    _emit(paths, 20)
    wait_until(lambda: any(p.name != ACTIVE_NAME for p in list_spool_files(paths.spool_dir)), timeout=20,
               what=lambda: "the daemon's rotation of the oversized spool file:\n" + daemon.log_text())
    assert daemon.call("status")["mode"] == "manual"


def test_housekeeping_is_a_job_beside_auto_mode_in_the_daemons_one_scheduler(paths):
    """Housekeeping runs in every mode, the auto-mode job only in auto mode, both in one
    APScheduler; config changes reschedule; shutting the scheduler down stops both."""
    from branchpy_telemetry.client.contracts.config import load_config
    from branchpy_telemetry.daemon.control.config_change import apply_config_change
    from branchpy_telemetry.daemon.control.context import DaemonContext
    from branchpy_telemetry.daemon.control.schedule import apply_schedule, stop_schedule
    from branchpy_telemetry.daemon.scheduling.housekeeping import JOB_ID as HOUSEKEEPING
    from branchpy_telemetry.daemon.scheduling.scheduler import JOB_ID as AUTO

    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text("[telemetry.rotation]\nmax_file_mb = 0.001\n")
    daemon = DaemonContext(paths=paths, config=load_config(paths.config_file, env={}), version="t",
                           idle_timeout=0, housekeeping_interval_s=0.2)
    try:
        apply_schedule(daemon)
        assert [job.id for job in daemon.jobs.jobs()] == [HOUSEKEEPING]
        _emit(paths, 20)
        assert _wait_for_a_rotated_file(paths), "housekeeping never rotated the oversized spool file"
        apply_config_change(daemon, {"telemetry.mode": "auto", "telemetry.auto.interval": "1h"})
        assert sorted(job.id for job in daemon.jobs.jobs()) == sorted([AUTO, HOUSEKEEPING])
        assert daemon.jobs.interval_s(AUTO) == 3600 and daemon.jobs.interval_s(HOUSEKEEPING) == 0.2
        apply_config_change(daemon, {"telemetry.auto.interval": "2h"})
        assert daemon.jobs.interval_s(AUTO) == 7200
        apply_config_change(daemon, {"telemetry.mode": "manual"})
        assert [job.id for job in daemon.jobs.jobs()] == [HOUSEKEEPING]
    finally:
        assert stop_schedule(daemon, timeout=5)
    assert daemon.jobs.jobs() == []


def test_an_auto_mode_daemon_rotates_by_age_between_its_runs(paths, start_daemon):
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text('[telemetry]\nmode = "auto"\n[telemetry.auto]\ninterval = "1h"\n'
                                 '[telemetry.rotation]\nmax_age = "1s"\n')
    daemon = start_daemon("--idle-timeout", "0", "--housekeeping-interval", "0.2")
    _emit(paths, 2)
    assert _wait_for_a_rotated_file(paths), "never rotated the old spool file:\n" + daemon.log_text()
    status = daemon.call("status")
    assert status["auto"]["scheduled"] and status["auto"]["runs"]["runs"] == 0  # no delivery ran
