"""`shutdown`: reply, then stop cleanly (sockets closed, files removed, lock released)."""

from __future__ import annotations

from typing import Any

from branchpy_telemetry.daemon.control.context import RequestContext
from branchpy_telemetry.daemon.control.handlers.args import NoArgs, parse_args


def handle(ctx: RequestContext, args: dict[str, Any]) -> dict[str, Any]:
    parse_args(args, NoArgs)
    ctx.daemon.request_shutdown()
    return {"stopping": True, "pid": ctx.daemon.pid}
