"""`upload`: send exactly the reviewed file (`file`), or a fresh package for a window (`auto` + `from`).

`file`: the bytes must be ones this machine exported, or previewed as VALID
with `reviewed` (daemon/delivery/review_gate.py; else `package_changed` or
`not_reviewed`, exit 4, nothing sent); on failure the reply carries the
server's message and the kept copy's path (`upload_failed`, exit 5; a
rejected package is quarantined, exit 4).
`auto`: export the window to a staging file, then deliver it the same way.
`dry_run` on both: build/validate and record in the ledger, never send.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from branchpy_telemetry.client.contracts.errors import UsageError
from branchpy_telemetry.client.contracts.paths import ensure_private_dir
from branchpy_telemetry.client.contracts.timewindow import parse_window_start, utcnow
from branchpy_telemetry.daemon.control.context import RequestContext
from branchpy_telemetry.daemon.control.handlers.args import parse_args
from branchpy_telemetry.daemon.delivery.consent_gate import ConsentArgs, require_consent

if TYPE_CHECKING:
    from branchpy_telemetry.daemon.delivery.deliver import UploadResult



class UploadArgs(ConsentArgs, forbid_unknown_fields=True, kw_only=True):
    """Send the package `file` (an absolute path), or, with `auto`, a fresh package for the window
    `from`. A file is sent only if this machine exported exactly these bytes, or `reviewed` is true
    and `preview` showed exactly these bytes as VALID. `dry_run`: build, validate and record, never send."""

    file: str | None = None
    auto: bool = False
    from_: str | None = msgspec.field(default=None, name="from")
    dry_run: bool = False
    reviewed: bool = False  # with `file`: the user confirms the content `preview` showed


def handle(ctx: RequestContext, args: dict[str, Any]) -> UploadResult:
    spec = parse_args(args, UploadArgs)
    if spec.auto == (spec.file is not None):
        raise UsageError("give either file or auto (with from)",
                         hint="upload --file FILE, or upload --auto --from 24h")
    if spec.auto and not spec.from_:
        raise UsageError("upload --auto needs from (a window: 30m, 24h, 7d or an ISO-8601 time)")
    if spec.file is not None and spec.from_:
        raise UsageError("from only goes with auto", hint="upload --auto --from 24h")
    if spec.auto and spec.reviewed:
        raise UsageError("reviewed only goes with file", hint="upload --file FILE --reviewed")
    if not spec.dry_run:
        require_consent(ctx.config, spec)
    with ctx.daemon.delivery_lock.held("upload"):
        results = (upload_window(ctx, spec) if spec.auto
                   else [upload_file(ctx, Path(spec.file), spec.dry_run, reviewed=spec.reviewed)])
    return check_results(results, spec.dry_run)


def upload_file(ctx: RequestContext, path: Path, dry_run: bool, *, reviewed: bool = False):
    """Send the file if this machine exported these exact bytes, or `reviewed` confirms a VALID
    preview of them (daemon/delivery/review_gate.py); the bytes sent are the bytes checked."""
    from branchpy_telemetry.daemon.counters import CounterStore
    from branchpy_telemetry.daemon.delivery.deliver import deliver_file
    from branchpy_telemetry.daemon.delivery.review_gate import check_sendable
    from branchpy_telemetry.daemon.delivery.uploader import read_package_file, sha256_hex
    from branchpy_telemetry.daemon.scheduling.auto_job import open_outbox

    if not path.is_absolute():
        raise UsageError(f"file must be an absolute path, got {str(path)!r}",
                         hint="send an absolute path (the CLI resolves it against its working folder)")
    sha256 = sha256_hex(read_package_file(path))
    check_sendable(ctx.paths, path, sha256, reviewed=reviewed)
    outbox = open_outbox(ctx.paths, ctx.config, CounterStore(ctx.paths.counters_file))
    outbox.sweep_stale_temp_files()
    ctx.progress(0, 1, stage="upload")
    result = deliver_file(path, ctx.config, outbox, ctx.paths.ledger_file, expected_sha256=sha256,
                          dry_run=dry_run)
    ctx.progress(1, 1, stage="upload")
    return result


def upload_window(ctx: RequestContext, spec: UploadArgs) -> list:
    from branchpy_telemetry.daemon.export.exporter import export_window

    start = parse_window_start(spec.from_, utcnow())
    staging = ensure_private_dir(ctx.paths.staging_dir)
    output = staging / f"upload-{time.time_ns()}.json"

    def progress(done: int, total: int | None) -> None:
        ctx.progress(done, total, stage="export")

    exported = export_window(ctx.paths, ctx.config, output, start, None, progress=progress,
                             dry_run=spec.dry_run)
    results = []
    try:
        if exported.events == 0:
            return []
        for file in exported.files:
            result = upload_file(ctx, Path(file), spec.dry_run)
            if spec.dry_run:
                result.kept_at = None  # the staging copy is removed below
            results.append(result)
    finally:
        for file in exported.files:
            Path(file).unlink(missing_ok=True)
        Path(exported.report_file).unlink(missing_ok=True)
    return results


def check_results(results: list, dry_run: bool) -> UploadResult:
    """The reply, or the first failure as the CLI's error (with every result in its details)."""
    from branchpy_telemetry.daemon.delivery.deliver import UploadResult, failure_error

    for result in results:
        error = failure_error(result)
        if error is not None:
            if len(results) > 1:
                error.details = {**(error.details or {}), "results": msgspec.to_builtins(results)}
            raise error
    return UploadResult(dry_run=dry_run, packages=len(results), events=sum(r.events for r in results),
                        results=results)
