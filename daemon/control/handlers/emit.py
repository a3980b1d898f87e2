"""`emit`: record one event in the spool (same arguments as `branchpy telemetry emit`).

The CLI's own `emit` writes straight to the spool without a daemon; this
command exists for protocol clients (the bridge, other languages).
"""

from __future__ import annotations

from typing import Any

from branchpy_telemetry.client.contracts.errors import ConsentWithdrawnError, StorageError
from branchpy_telemetry.daemon.control.context import RequestContext
from branchpy_telemetry.daemon.control.handlers.args import parse_args
from branchpy_telemetry.daemon.delivery.consent_gate import ConsentArgs

Scalar = str | int | float | bool | None


class Args(ConsentArgs, forbid_unknown_fields=True, kw_only=True):
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
    from branchpy_telemetry.client.contracts.consent import consent_withdrawn
    from branchpy_telemetry.client.emitter.emit import Emitter

    spec = parse_args(args, Args)
    if spec.consent == "off":
        raise ConsentWithdrawnError(
            f"telemetry is off ({spec.consent_source or 'the caller'}): nothing recorded")
    error = {k: v for k, v in (("code", spec.error_code), ("type", spec.error_type),
                               ("message", spec.error_message)) if v is not None}
    emitter = Emitter(ctx.paths, source=spec.source)
    try:
        record = emitter.build(spec.category, spec.name, duration_ms=spec.duration_ms, status=spec.status,
                               session_id=spec.session_id, correlation_id=spec.correlation_id,
                               error=error or None, attrs=spec.attrs or None)
        written = emitter.write(record)
    finally:
        emitter.close()
    if not written:
        if consent_withdrawn():
            raise ConsentWithdrawnError("telemetry is off (DO_NOT_TRACK or BRANCHPY_TELEMETRY=off "
                                        "in the daemon's environment): nothing recorded")
        raise StorageError(f"could not write to the spool in {ctx.paths.spool_dir}",
                           hint="check free space and permissions; see the daemon log")
    return {"recorded": True, "event_id": record.event_id, "spool": str(ctx.paths.active_spool)}
