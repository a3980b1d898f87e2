"""`upload`: send exactly the reviewed file (`file`), or a fresh package for a window (`auto` + `from`).

`file`: the sha256 recorded at export must still match (else `package_changed`,
exit 4); on failure the reply carries the server's message and the kept copy's
path (`upload_failed`, exit 5; a rejected package is quarantined, exit 4).
`auto`: export the window to a staging file, then deliver it the same way.
`dry_run` on both: build/validate and record in the ledger, never send.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from branchpy_telemetry.client.errors import UsageError
from branchpy_telemetry.client.paths import ensure_private_dir
from branchpy_telemetry.client.timewindow import parse_window_start, utcnow

from ..consent_gate import ConsentArgs, require_consent
from ..context import RequestContext
from .args import parse_args

if TYPE_CHECKING:
    from ..delivery import UploadResult

STAGING_DIR = "staging"


class UploadArgs(ConsentArgs, forbid_unknown_fields=True, kw_only=True):
    """Send the reviewed `file` (an absolute path; refused if it changed since export), or, with `auto`,
    a fresh package for the window `from`. `dry_run`: build, validate and record, never send."""

    file: str | None = None
    auto: bool = False
    from_: str | None = msgspec.field(default=None, name="from")
    dry_run: bool = False


def handle(ctx: RequestContext, args: dict[str, Any]) -> UploadResult:
    spec = parse_args(args, UploadArgs)
    if spec.auto == (spec.file is not None):
        raise UsageError("give either file or auto (with from)",
                         hint="upload --file FILE, or upload --auto --from 24h")
    if spec.auto and not spec.from_:
        raise UsageError("upload --auto needs from (a window: 30m, 24h, 7d or an ISO-8601 time)")
    if spec.file is not None and spec.from_:
        raise UsageError("from only goes with auto", hint="upload --auto --from 24h")
    if not spec.dry_run:
        require_consent(ctx.config, spec)
    with ctx.daemon.delivery_lock:
        results = upload_window(ctx, spec) if spec.auto else [upload_file(ctx, Path(spec.file), spec.dry_run)]
    return check_results(results, spec.dry_run)


def upload_file(ctx: RequestContext, path: Path, dry_run: bool, expected: str | None = None):
    from ..auto_job import open_outbox
    from ..counters import CounterStore
    from ..delivery import deliver_file
    from ..uploader import EXPORTS_FILENAME, recorded_sha256

    if not path.is_absolute():
        raise UsageError(f"file must be an absolute path, got {str(path)!r}",
                         hint="send an absolute path (the CLI resolves it against its working folder)")
    if expected is None:
        expected = recorded_sha256(ctx.paths.data_dir / EXPORTS_FILENAME, path)
    outbox = open_outbox(ctx.paths, ctx.config, CounterStore(ctx.paths.counters_file))
    ctx.progress(0, 1, stage="upload")
    result = deliver_file(path, ctx.config, outbox, ctx.paths.ledger_file, expected_sha256=expected,
                          dry_run=dry_run)
    ctx.progress(1, 1, stage="upload")
    return result


def upload_window(ctx: RequestContext, spec: UploadArgs) -> list:
    from ..exporter import export_window

    start = parse_window_start(spec.from_, utcnow())
    staging = ensure_private_dir(ctx.paths.data_dir / STAGING_DIR)
    output = staging / f"upload-{time.time_ns()}.json"

    def progress(done: int, total: int | None) -> None:
        ctx.progress(done, total, stage="export")

    exported = export_window(ctx.paths, ctx.config, output, start, None, progress=progress)
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
    from ..delivery import UploadResult, failure_error

    for result in results:
        error = failure_error(result)
        if error is not None:
            if len(results) > 1:
                error.details = {**(error.details or {}), "results": msgspec.to_builtins(results)}
            raise error
    return UploadResult(dry_run=dry_run, packages=len(results), events=sum(r.events for r in results),
                        results=results)
