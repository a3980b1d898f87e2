"""`rotate`: rotate the active spool file now (the spool's lock/rename protocol)."""

from __future__ import annotations

from typing import Any

from branchpy_telemetry.client.spool import rotate_spool

from ..context import RequestContext
from .args import NoArgs, parse_args


def handle(ctx: RequestContext, args: dict[str, Any]) -> dict[str, Any]:
    parse_args(args, NoArgs)
    rotated = rotate_spool(ctx.paths.spool_dir)
    return {"rotated": rotated is not None, "file": str(rotated) if rotated else None}
