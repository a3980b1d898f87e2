"""`rotate`: rotate the active spool file now (the spool's lock/rename protocol)."""

from __future__ import annotations

from typing import Any

import msgspec

from branchpy_telemetry.client.emitter.spool import rotate_spool
from branchpy_telemetry.daemon.control.context import RequestContext
from branchpy_telemetry.daemon.control.handlers.args import NoArgs, parse_args


class RotateResult(msgspec.Struct, kw_only=True):
    """Whether the active spool file was rotated (an empty one is not), and its new name."""

    rotated: bool
    file: str | None


def handle(ctx: RequestContext, args: dict[str, Any]) -> RotateResult:
    parse_args(args, NoArgs)
    rotated = rotate_spool(ctx.paths.spool_dir)
    return RotateResult(rotated=rotated is not None, file=str(rotated) if rotated else None)
