"""`emit`: record one event in the spool (same arguments as `branchpy telemetry emit`).

The CLI's own `emit` writes straight to the spool without a daemon; this
command exists for protocol clients (the bridge, other languages).
"""

from __future__ import annotations

from typing import Any

import msgspec

from branchpy_telemetry.client.errors import StorageError, UsageError

from ..context import RequestContext
from .args import parse_args

Scalar = str | int | float | bool | None


class Args(msgspec.Struct, forbid_unknown_fields=True):
    category: str
    name: str
    source: str = "cli"
    duration_ms: float | None = None
    status: str | None = None
    error_code: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    session_id: str | None = None
    correlation_id: str | None = None
    attrs: dict[str, Scalar] = {}


def handle(ctx: RequestContext, args: dict[str, Any]) -> dict[str, Any]:
    from branchpy_telemetry.client import emitter

    spec = parse_args(args, Args)
    fields = {f: getattr(spec, f) for f in spec.__struct_fields__ if f not in ("category", "name")}
    try:
        event = emitter.build_event(spec.category, spec.name, **fields)
    except (ValueError, TypeError, msgspec.ValidationError) as exc:
        raise UsageError(f"invalid event: {exc}") from None
    written = emitter.write_event(ctx.paths, event)
    if written is False:
        raise StorageError(f"could not write to the spool in {ctx.paths.spool_dir}",
                           hint="check free space and permissions; see the daemon log")
    return {"event_id": event.event_id, "spool": str(ctx.paths.active_spool)}
