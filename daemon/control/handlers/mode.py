"""`mode manual|auto [interval] [dry_run]`: persist the mode in the config file, reschedule live.

`mode auto` without `dry_run` turns dry-run off (what you ask for is what
runs); `mode manual` leaves `telemetry.auto.*` as they are unless given.
A mode that cannot take effect (a bad interval, a schedule that cannot
start) changes nothing: neither the file nor the schedule.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from branchpy_telemetry.client.contracts.config import interval_problem
from branchpy_telemetry.client.contracts.errors import UsageError
from branchpy_telemetry.daemon.control.config_change import apply_config_change
from branchpy_telemetry.daemon.control.context import RequestContext
from branchpy_telemetry.daemon.control.handlers.args import parse_args
from branchpy_telemetry.daemon.delivery.consent_gate import ConsentArgs, require_consent


class ModeArgs(ConsentArgs, forbid_unknown_fields=True, kw_only=True):
    """Switch delivery mode; `auto` without `dry_run` turns dry-run off.

    A withdrawn consent refuses `auto` (unless `dry_run`)."""

    mode: Literal["manual", "auto"]
    interval: str | None = None  # 30m, 6h, … (at least 10s)
    dry_run: bool | None = None


class ModeResult(msgspec.Struct, kw_only=True):
    """The mode now in force, and when auto mode runs next."""

    mode: Literal["manual", "auto"]
    interval: str
    dry_run: bool
    next_run: str | None  # ISO 8601; None in manual mode
    config_file: str


def handle(ctx: RequestContext, args: dict[str, Any]) -> ModeResult:
    spec = parse_args(args, ModeArgs)
    if spec.interval is not None:
        problem = interval_problem(spec.interval.strip())
        if problem:
            raise UsageError(f"interval {problem}", hint="use 10s or more, e.g. --interval 6h")
    dry_run = spec.dry_run if spec.dry_run is not None else (False if spec.mode == "auto" else None)
    if spec.mode == "auto" and not dry_run:
        require_consent(ctx.config, spec)  # auto mode delivers: refused, nothing changes
    changes: dict[str, Any] = {"telemetry.mode": spec.mode}
    if spec.interval is not None:
        changes["telemetry.auto.interval"] = spec.interval.strip()
    if dry_run is not None:
        changes["telemetry.auto.dry_run"] = dry_run
    config = apply_config_change(ctx.daemon, changes)  # all or nothing, schedule included
    from branchpy_telemetry.daemon.control.auto_mode import auto_status

    auto = auto_status(ctx.daemon)
    return ModeResult(mode=config.telemetry.mode, interval=config.telemetry.auto.interval,
                      dry_run=config.telemetry.auto.dry_run, next_run=auto["next_run"],
                      config_file=str(ctx.paths.config_file))
