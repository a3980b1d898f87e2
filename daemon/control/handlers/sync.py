"""`sync`: run the auto-mode job now (rotate, export what is new, send the outbox), in either mode."""

from __future__ import annotations

from typing import Any

import msgspec

from branchpy_telemetry.client.contracts.errors import (
    TelemetryError,
    UploadFailedError,
    ValidationRejectedError,
)
from branchpy_telemetry.daemon.control.context import RequestContext
from branchpy_telemetry.daemon.control.handlers.args import parse_args
from branchpy_telemetry.daemon.delivery.consent_gate import ConsentArgs


def handle(ctx: RequestContext, args: dict[str, Any]) -> dict[str, Any]:
    caller = parse_args(args, ConsentArgs)  # a caller without consent: exported, kept, not sent
    from branchpy_telemetry.daemon.control.auto_mode import ensure_scheduler, run_job

    def progress(done: int, total: int | None, stage: str) -> None:
        ctx.progress(done, total, stage=stage)

    scheduler = ensure_scheduler(ctx.daemon)
    result = scheduler.run_now(lambda: run_job(ctx.daemon, progress=progress, caller=caller))
    if not result.ok:
        if isinstance(result.exception, TelemetryError):
            raise result.exception
        raise TelemetryError(f"sync failed: {result.error}", hint="see the daemon log for the details")
    report = msgspec.to_builtins(result.value)
    raise_if_undelivered(report, ctx.paths.outbox_dir)
    return report


def raise_if_undelivered(report: dict[str, Any], outbox_dir) -> None:
    """Kept packages → upload_failed (exit 5); only quarantined ones → validation_failed (exit 4)."""
    where = f"; kept at {report['failure_kept_at']}" if report.get("failure_kept_at") else ""
    if report.get("kept"):
        raise UploadFailedError(
            f"upload failed: {report.get('failure')}{where} "
            f"({report['kept']} package(s) wait in {outbox_dir})",
            details=report, hint="they are sent again on the next run (`branchpy telemetry sync`)")
    if report.get("quarantined"):
        raise ValidationRejectedError(
            f"{report['quarantined']} package(s) were rejected and quarantined: "
            f"{report.get('failure')}{where}",
            details=report, hint="they will not be retried")
