"""What the daemon runs on a timer, kept in step with its config.

Both jobs live in the daemon's one scheduler (`daemon/scheduling/job_scheduler.py`):
the auto-mode run (auto mode only, `daemon/control/auto_mode.py`) and housekeeping
(every mode, `daemon/scheduling/housekeeping.py`). `apply_schedule` runs at start-up
and after every change to `telemetry.mode` / `telemetry.auto.*`;
`stop_schedule` at shutdown.
"""

from __future__ import annotations

import structlog

from branchpy_telemetry.daemon.control.auto_mode import apply_mode
from branchpy_telemetry.daemon.control.context import DaemonContext
from branchpy_telemetry.daemon.scheduling.housekeeping import housekeeping_turn, schedule_housekeeping

log = structlog.get_logger("branchpy.schedule")

STOP_TIMEOUT_S = 5.0


def apply_schedule(daemon: DaemonContext) -> None:
    """Make both jobs match the config; raises (after housekeeping is in place) when auto mode
    is configured but cannot be scheduled (`daemon.auto_problem` says why)."""
    schedule_housekeeping(daemon.jobs, daemon.housekeeping_interval_s,
                          lambda: housekeeping_turn(daemon.paths, daemon.config, daemon.delivery_lock))
    apply_mode(daemon)


def stop_schedule(daemon: DaemonContext, timeout: float = STOP_TIMEOUT_S) -> bool:
    """Shut the scheduler down; True if no delivery run is still going after `timeout` seconds."""
    daemon.jobs.shutdown(wait=False)
    if daemon.delivery_lock.wait_until_free(timeout):
        return True
    log.warning("auto.run_abandoned_at_shutdown", timeout_s=timeout, holder=daemon.delivery_lock.holder)
    return False
