"""`preview`: what a package would send, plus its redaction report (for a person to review)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from branchpy_telemetry.client.contracts.errors import NotFoundError, UsageError
from branchpy_telemetry.daemon.control.context import RequestContext
from branchpy_telemetry.daemon.control.handlers.args import parse_args

if TYPE_CHECKING:
    from branchpy_telemetry.daemon.export.preview import PreviewResult


class PreviewArgs(msgspec.Struct, forbid_unknown_fields=True):
    """Review the package `file` (an absolute path): what it would send and what was removed.
    A VALID preview is remembered (by sha256), so `upload --file FILE --reviewed` can send
    exactly these bytes even when this machine did not export them."""

    file: str
    max_events: int = 50  # events listed in the human-readable `text`; 0 = all (the data has all)


def handle(ctx: RequestContext, args: dict[str, Any]) -> PreviewResult:
    spec = parse_args(args, PreviewArgs)
    path = Path(spec.file)
    if not path.is_absolute():
        raise UsageError(f"file must be an absolute path, got {spec.file!r}",
                         hint="send an absolute path (the CLI resolves it against its working folder)")
    if not path.is_file():
        raise NotFoundError(f"no package file at {path}", hint="run `branchpy telemetry export` first")
    if spec.max_events < 0:
        raise UsageError("max_events must be 0 (all) or more")
    from branchpy_telemetry.client.contracts.catalog import cached_catalog
    from branchpy_telemetry.daemon.export.package_records import find_export_record
    from branchpy_telemetry.daemon.export.preview import (  # lazy: fast start-up
        PreviewResult,
        preview_file,
        render_preview_text,
    )

    result = preview_file(path, cached_catalog(ctx.config.telemetry.catalog),
                          find_export_record(ctx.paths.exports_file, path))
    result["send_command"] = None
    if result["valid"]:  # what `upload --file` will need to send exactly these bytes
        from branchpy_telemetry.daemon.export.package_records import record_review, was_exported

        record_review(ctx.paths.reviews_file, path, result["sha256"])
        reviewed = "" if was_exported(ctx.paths.exports_file, result["sha256"]) else " --reviewed"
        result["send_command"] = f"branchpy telemetry upload --file {path}{reviewed}"
    shown = spec.max_events or len(result.get("events") or [])
    result["text"] = render_preview_text(result, max_events=shown)
    return msgspec.convert(result, PreviewResult)  # a key preview_file adds must be declared there
