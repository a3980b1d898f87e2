"""Housekeeping between deliveries: rotation (`telemetry.rotation.*`), local
retention (`telemetry.retention.*`) and the outbox's crash leftovers, on a
timer, in every mode.

Auto runs and `sync` already rotate and apply retention as part of their
run; this job makes the same steps happen while nothing is being delivered
too (manual mode, long auto intervals). It is one interval job in the
daemon's scheduler (`daemon/scheduling/job_scheduler.py`), first turn at start-up. A
turn takes the delivery lock only if it is free (a run holding it does the
same work) and reads the daemon's config as it is then. A failing turn is
logged and never stops the next one.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from branchpy_telemetry.client.contracts.config import Config
from branchpy_telemetry.client.contracts.paths import TelemetryPaths
from branchpy_telemetry.daemon.delivery.delivery_lock import DeliveryLock
from branchpy_telemetry.daemon.scheduling.job_scheduler import JobScheduler

log = structlog.get_logger("branchpy.housekeeping")

JOB_ID = "telemetry.housekeeping"
DEFAULT_INTERVAL_S = 60.0
HOLDER = "housekeeping"  # how a turn names itself on the delivery lock


def run_housekeeping(paths: TelemetryPaths, config: Config, lock: DeliveryLock) -> bool:
    """One turn; False when something holds the delivery lock (a run does the same work itself)."""
    # imported here: the delivery stack is heavy, daemon start-up is not
    from branchpy_telemetry.daemon.counters import CounterStore
    from branchpy_telemetry.daemon.export.checkpoints import CheckpointStore
    from branchpy_telemetry.daemon.export.spool_reader import extension_dir
    from branchpy_telemetry.daemon.scheduling.auto_job import open_outbox
    from branchpy_telemetry.daemon.scheduling.retention import apply_retention
    from branchpy_telemetry.daemon.scheduling.rotation_policy import apply_rotation_policy

    if not lock.acquire(HOLDER, 0):
        log.debug("housekeeping.skipped", busy=lock.holder)
        return False
    try:
        rotated = apply_rotation_policy(paths.spool_dir, config)
        counters = CounterStore(paths.counters_file)
        outbox = open_outbox(paths, config, counters)
        outbox.sweep_stale_temp_files()
        store = CheckpointStore.load(paths.checkpoints_file)
        retained = apply_retention(paths.spool_dir, config, store, outbox, counters,
                                   extension_dir=extension_dir(paths, config))
        if rotated or retained.deleted:
            log.info("housekeeping.done", rotated=str(rotated) if rotated else None,
                     deleted=len(retained.deleted), bytes=retained.bytes)
        return True
    finally:
        lock.release()


def housekeeping_turn(paths: TelemetryPaths, config: Config, lock: DeliveryLock) -> None:
    """What the job runs: one turn; never raises."""
    try:
        run_housekeeping(paths, config, lock)
    except Exception:  # a bad turn (disk trouble, a vanished file) must not end the next ones
        log.exception("housekeeping.failed")


def schedule_housekeeping(jobs: JobScheduler, interval_s: float, turn: Callable[[], None]) -> None:
    """Make the housekeeping job run `turn` every `interval_s` seconds, first now (0 or less: no job)."""
    if interval_s <= 0:
        jobs.remove(JOB_ID)
        return
    grace = max(1, int(interval_s / 2))
    if jobs.job(JOB_ID) is None:
        jobs.schedule(JOB_ID, turn, name="telemetry housekeeping", interval_s=interval_s,
                      misfire_grace_s=grace, run_now=True)
    elif jobs.interval_s(JOB_ID) != interval_s:
        jobs.reschedule(JOB_ID, interval_s=interval_s, misfire_grace_s=grace)
