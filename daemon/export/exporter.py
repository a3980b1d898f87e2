"""The exporter: a time window of events -> sanitized, size-capped package files (docs/package-schema.md).

`export_window` reads every source for the window (streaming, see
`spool_reader`), hands the records to `package_builder.build_packages` (which
sanitizes, aggregates and writes the package or its parts), then records what
it wrote (`exports.jsonl`, for `upload --file`), counts it in the persistent
counters (`exported.*`, what `status` shows), and removes what an earlier
export to the same name left and this one did not rewrite.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import msgspec
import structlog

from branchpy_telemetry.client.contracts.catalog import cached_catalog
from branchpy_telemetry.client.contracts.config import Config
from branchpy_telemetry.client.contracts.declared import ExportPolicy
from branchpy_telemetry.client.contracts.errors import StorageError, UsageError
from branchpy_telemetry.client.contracts.paths import TelemetryPaths
from branchpy_telemetry.client.contracts.schema import CatalogRef
from branchpy_telemetry.client.contracts.timewindow import format_ts, utcnow
from branchpy_telemetry.daemon.counters import CounterStore
from branchpy_telemetry.daemon.export.package_builder import ProgressFn, build_packages
from branchpy_telemetry.daemon.export.package_records import ExportRecord, record_exports
from branchpy_telemetry.daemon.export.package_writer import PackageHeader, make_header, remove_stale_exports
from branchpy_telemetry.daemon.export.spool_reader import (
    ReadStats,
    RecordBlocks,
    open_sources,
    read_blocks,
    select_blocks,
)
from branchpy_telemetry.daemon.identity import load_or_create_identity

log = structlog.get_logger(__name__)


class ExportResult(msgspec.Struct):
    """The package file(s) written, their ids, what they hold, and the redaction report beside them."""

    files: list[str]
    package_ids: list[str]
    events: int
    skipped_lines: int
    redactions: dict[str, int]
    bytes: int
    report_file: str
    left_out: dict[str, int] = {}  # undeclared/expired event names -> count (local only)


def export_window(paths: TelemetryPaths, config: Config, output: Path, start: datetime | None,
                  end: datetime | None, *, progress: ProgressFn | None = None,
                  dry_run: bool = False) -> ExportResult:
    """Export every source's events with `start <= ts < end` to `output` (or its parts).

    Counted as exported, or for a dry run (`upload --auto --dry-run`) apart, as dry-run packages."""
    output = Path(output)
    check_output(output)
    header, policy = prepare_export(paths, config, format_ts(start) if start else None,
                                    format_ts(end) if end else None)
    stats = ReadStats()
    sources = open_sources(paths, config)
    try:
        records = RecordBlocks(select_blocks(read_blocks(sources, stats), start, end, stats))
        result = build_packages(records, header=header, cap=config.max_upload_bytes, output=output,
                                policy=policy, stats=stats, progress=progress)
    finally:
        sources.close()
    removed = remove_stale_exports(paths.exports_file, output, [Path(w[0]) for w in result.written])
    record_exports(paths.exports_file, [
        ExportRecord(path=str(Path(f).resolve()), sha256=sha, package_id=pid, events=n, bytes=size,
                     created=header.export_timestamp, undeclared=policy.left_out)
        for f, sha, pid, n, size in result.written
    ])
    unit = "dry_run" if dry_run else "exported"
    CounterStore(paths.counters_file).increment_many(
        {f"{unit}.packages": len(result.written), f"{unit}.events": result.events})
    log.info("export.done", files=len(result.written), events=result.events, bytes=result.bytes,
             stale_removed=len(removed),
             skipped_lines=stats.skipped_lines, redactions=sum(result.redactions.values()))
    return ExportResult(
        files=[w[0] for w in result.written], package_ids=[w[2] for w in result.written],
        events=result.events, skipped_lines=stats.skipped_lines, redactions=result.redactions,
        bytes=result.bytes, report_file=str(result.report_file), left_out=policy.left_out)


def prepare_export(paths: TelemetryPaths, config: Config, window_from: str | None,
                   window_to: str | None) -> tuple[PackageHeader, ExportPolicy]:
    """What every part of one export shares, and the policy it applies: the configured
    catalog (validated; a bad one is a `catalog_invalid` error before anything is read),
    today's date for expiry, and the install's id key."""
    catalog = cached_catalog(config.telemetry.catalog)
    gid, key = load_or_create_identity(paths)
    ref = CatalogRef(id=catalog.id, revision=catalog.revision, sha256=catalog.sha256)
    policy = ExportPolicy(catalog=catalog, today=utcnow().date(), id_key=bytes.fromhex(key))
    return make_header(gid, window_from, window_to, catalog=ref), policy


def check_output(output: Path) -> None:
    if not output.is_absolute():
        raise UsageError(f"output must be an absolute path, got {str(output)!r}")
    if output.is_dir():
        raise UsageError(f"output {output} is a folder", hint="give a file name, e.g. rc-metrics.json")
    if not output.parent.is_dir():
        raise StorageError(f"folder {output.parent} does not exist", hint="create it or choose another path")
