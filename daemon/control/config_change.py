"""Change the config file and make the daemon follow it: all of it, or nothing.

`apply_config_change` validates the new values (the checks loading makes),
writes them in one atomic write, reloads, and makes the daemon's schedule
(the auto-mode job and housekeeping) match. If the schedule cannot follow
(it refuses the interval, APScheduler fails), the file's previous bytes
are put back and the previous config and schedule restored before the
error goes to the caller: a failed `mode` or `config set` leaves no
`mode = "auto"` behind with nothing scheduled.
"""

from __future__ import annotations

from typing import Any

import structlog

from branchpy_telemetry.client.contracts.config import (
    Config,
    read_config_bytes,
    restore_config_bytes,
    set_values_in_file,
)
from branchpy_telemetry.client.contracts.errors import TelemetryError
from branchpy_telemetry.daemon.control.context import DaemonContext

log = structlog.get_logger("branchpy.config")

SCHEDULE_KEYS = ("telemetry.mode", "telemetry.auto.")


def apply_config_change(daemon: DaemonContext, values: dict[str, Any]) -> Config:
    file = daemon.paths.config_file
    with daemon.config_lock:
        before = read_config_bytes(file)
        set_values_in_file(file, values)
    config = daemon.reload_config()
    if not any(key.startswith(SCHEDULE_KEYS) for key in values):
        return config
    from branchpy_telemetry.daemon.control.schedule import apply_schedule

    try:
        apply_schedule(daemon)
    except TelemetryError as exc:
        with daemon.config_lock:
            restore_config_bytes(file, before)
        daemon.reload_config()
        try:
            apply_schedule(daemon)  # the schedule the restored config asks for
        except TelemetryError as again:
            log.error("config.restore_schedule_failed", code=again.code, error=again.message)
        log.warning("config.change_undone", keys=sorted(values), code=exc.code, error=exc.message)
        raise
    return config
