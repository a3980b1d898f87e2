"""`mode manual|auto [interval] [dry_run]`: persist the mode in the config file, reschedule live.

`mode auto` without `dry_run` turns dry-run off (what you ask for is what
runs); `mode manual` leaves `telemetry.auto.*` as they are unless given.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from branchpy_telemetry.client.config import INTERVAL_FLOOR_SECONDS, set_value_in_file
from branchpy_telemetry.client.errors import UsageError
from branchpy_telemetry.client.timewindow import parse_duration

from ..consent_gate import ConsentArgs, require_consent
from ..context import RequestContext
from .args import parse_args


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
        seconds = parse_duration(spec.interval).total_seconds()
        if seconds < INTERVAL_FLOOR_SECONDS:
            raise UsageError(f"interval {spec.interval!r} is below the floor of {INTERVAL_FLOOR_SECONDS:g}s",
                             hint="use 10s or more, e.g. --interval 6h")
    dry_run = spec.dry_run if spec.dry_run is not None else (False if spec.mode == "auto" else None)
    if spec.mode == "auto" and not dry_run:
        require_consent(ctx.config, spec)  # auto mode delivers: refused, nothing changes
    file = ctx.paths.config_file
    with ctx.daemon.config_lock:
        if spec.interval is not None:
            set_value_in_file(file, "telemetry.auto.interval", spec.interval.strip())
        if dry_run is not None:
            set_value_in_file(file, "telemetry.auto.dry_run", dry_run)
        set_value_in_file(file, "telemetry.mode", spec.mode)
    config = ctx.daemon.reload_config()

    from ..auto_mode import apply_mode, auto_status

    apply_mode(ctx.daemon)
    auto = auto_status(ctx.daemon)
    return ModeResult(mode=config.telemetry.mode, interval=config.telemetry.auto.interval,
                      dry_run=config.telemetry.auto.dry_run, next_run=auto["next_run"], config_file=str(file))
