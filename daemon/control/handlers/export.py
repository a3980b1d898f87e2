"""`export`: build sanitized package(s) for a window; progress goes to the PUB socket.

The exporter lives in `daemon/export/exporter.py`; it is imported here, lazily, so
the daemon starts fast and a broken exporter cannot stop `status` answering.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from branchpy_telemetry.client.contracts.errors import UsageError
from branchpy_telemetry.client.contracts.timewindow import parse_window_start, utcnow
from branchpy_telemetry.daemon.control.context import RequestContext
from branchpy_telemetry.daemon.control.handlers.args import parse_args

if TYPE_CHECKING:
    from branchpy_telemetry.daemon.export.exporter import ExportResult


class ExportArgs(msgspec.Struct, forbid_unknown_fields=True):
    """Export the window [`from`, `to`) (30m, 24h, 7d or ISO 8601; default: everything) to `output`
    (an absolute path; a larger window becomes NAME.part001.json, …)."""

    output: str
    from_: str | None = msgspec.field(default=None, name="from")
    to: str | None = None


def handle(ctx: RequestContext, args: dict[str, Any]) -> ExportResult:
    spec = parse_args(args, ExportArgs)
    output = Path(spec.output)
    if not output.is_absolute():
        raise UsageError(f"output must be an absolute path, got {spec.output!r}",
                         hint="send an absolute path (the CLI resolves it against its working folder)")
    now = utcnow()
    start = parse_window_start(spec.from_, now) if spec.from_ else None
    end = parse_window_start(spec.to, now) if spec.to else None
    if start and end and start >= end:
        raise UsageError(f"empty window: --from {spec.from_} is not before --to {spec.to}")

    from branchpy_telemetry.daemon.export.exporter import export_window  # lazy: keeps start-up fast

    def progress(done: int, total: int | None) -> None:
        ctx.progress(done, total, stage="export")

    return export_window(ctx.paths, ctx.config, output, start, end, progress=progress)
