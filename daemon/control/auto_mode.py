"""Auto mode in the daemon: start, reschedule or stop the scheduled run to match the config.

`apply_mode(daemon)` makes the auto-mode job in the daemon's scheduler match
`telemetry.mode` / `telemetry.auto.interval` (`daemon/control/schedule.py` calls it at
start-up and after a config change); the job itself is
`auto_job.run_auto_job`, run under the daemon's delivery lock. `sync` runs
the same job now through `run_now` (either mode).
"""

from __future__ import annotations

import structlog

from branchpy_telemetry.client.contracts.errors import TelemetryError
from branchpy_telemetry.client.contracts.timewindow import format_ts, parse_duration
from branchpy_telemetry.daemon.control.context import DaemonContext

log = structlog.get_logger("branchpy.auto_mode")


def ensure_scheduler(daemon: DaemonContext):
    from branchpy_telemetry.daemon.scheduling.scheduler import AutoModeScheduler

    if daemon.scheduler is None:
        daemon.scheduler = AutoModeScheduler(jobs=daemon.jobs, lock=daemon.delivery_lock)
    return daemon.scheduler


def run_job(daemon: DaemonContext, progress=None, caller=None):
    """One auto-mode run with the daemon's current config (what the schedule and `sync` run;
    the scheduler holds the delivery lock around it)."""
    from branchpy_telemetry.daemon.scheduling.auto_job import run_auto_job

    return run_auto_job(daemon.paths, daemon.config, progress=progress, caller=caller)


def apply_mode(daemon: DaemonContext) -> None:
    """Make the schedule match `telemetry.mode` / `telemetry.auto.interval`.

    When auto mode is configured but cannot be scheduled, the reason is kept
    in `daemon.auto_problem` (what `status` shows) and the error raised."""
    try:
        _apply_mode(daemon)
    except TelemetryError as exc:
        daemon.auto_problem = exc.message
        raise
    daemon.auto_problem = None


def _apply_mode(daemon: DaemonContext) -> None:
    config = daemon.config
    if config.telemetry.mode != "auto":
        if daemon.scheduler is not None and daemon.scheduler.running:
            daemon.scheduler.stop()
            log.info("auto.stopped")
        return
    interval = parse_duration(config.telemetry.auto.interval).total_seconds()
    scheduler = ensure_scheduler(daemon)
    if scheduler.running:
        if scheduler.interval_s != interval:
            scheduler.reschedule(interval)
        return
    scheduler.start(lambda: run_job(daemon), interval)


def auto_status(daemon: DaemonContext) -> dict:
    """Mode, schedule, last run and run counts for `status` (times in the wire format)."""
    config = daemon.config
    scheduler = daemon.scheduler
    scheduled = bool(scheduler is not None and scheduler.running)
    out: dict = {"interval": config.telemetry.auto.interval, "dry_run": config.telemetry.auto.dry_run,
                 "scheduled": scheduled, "next_run": None, "last_run": None, "runs": {},
                 "not_scheduled_because": None}
    if config.telemetry.mode == "auto" and not scheduled:
        out["not_scheduled_because"] = daemon.auto_problem or "the schedule has not started"
    if scheduler is not None:
        next_run = scheduler.next_run_time()
        out["next_run"] = format_ts(next_run) if next_run else None
        last = scheduler.last_result()
        if last is not None:
            out["last_run"] = last.to_status()
            if last.ok and last.value is not None and hasattr(last.value, "__struct_fields__"):
                import msgspec

                out["last_run"]["report"] = msgspec.to_builtins(last.value)
        out["runs"] = scheduler.counts()
    return out
