"""The auto-mode run, also what `sync` runs now: rotate → export → send → retain.

1. Rotate the active spool if `telemetry.rotation.*` says so.
2. Export everything not yet delivered, tracked by checkpoints (not time
   windows): the new complete lines of every source become sanitized packages
   in the outbox. Order for exactly-once: packages are durable in the outbox
   BEFORE the checkpoints advance; a crash in between re-exports those lines
   in a new package, and the backend stores each `event_id` once.
3. Send the outbox (oldest first, daily byte budget) — or, in dry-run, only
   validate each waiting package and record it in the ledger as `dry_run`
   (once per package), never sending. Withdrawn consent: nothing is sent and
   the run fails with `consent_withdrawn` (packages stay in the outbox).
4. Apply retention (only delivered data, or in manual mode data older than keep).

Runs never overlap: the caller holds the daemon's delivery lock (`daemon/delivery/delivery_lock.py`).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import structlog

from branchpy_telemetry.client.contracts.config import Config
from branchpy_telemetry.client.contracts.errors import ConsentWithdrawnError
from branchpy_telemetry.client.contracts.paths import TelemetryPaths, ensure_private_dir
from branchpy_telemetry.client.contracts.timewindow import utcnow
from branchpy_telemetry.client.emitter.spool import spool_size_bytes
from branchpy_telemetry.daemon.counters import CounterStore
from branchpy_telemetry.daemon.delivery.budget import DailyUploadBudget
from branchpy_telemetry.daemon.delivery.consent_gate import ConsentArgs, delivery_blocker, hint_for
from branchpy_telemetry.daemon.delivery.deliver import DeliveryReport, ledger_record_for, send_outbox
from branchpy_telemetry.daemon.delivery.ledger import append_receipt, read_history
from branchpy_telemetry.daemon.delivery.outbox import Outbox
from branchpy_telemetry.daemon.delivery.uploader import LocalRejection, UploadOutcome, prepare_upload
from branchpy_telemetry.daemon.export.checkpoints import CheckpointStore
from branchpy_telemetry.daemon.export.exporter import prepare_export
from branchpy_telemetry.daemon.export.package_builder import build_packages
from branchpy_telemetry.daemon.export.source_reader import NewEventsReader
from branchpy_telemetry.daemon.export.spool_reader import ReadStats, extension_dir
from branchpy_telemetry.daemon.scheduling.retention import apply_retention
from branchpy_telemetry.daemon.scheduling.rotation_policy import apply_rotation_policy

log = structlog.get_logger("branchpy.auto")

ProgressFn = Callable[[int, "int | None", str], None]  # (done, total, stage)


class AutoRunReport(msgspec.Struct, kw_only=True):
    """One auto-mode run (what `sync` runs now): rotated, read, exported, delivered, kept, retained."""

    dry_run: bool
    rotated: str | None = None
    read_events: int = 0  # lines the sources gained since the last run (new to sync, maybe sent otherwise)
    skipped_lines: int = 0
    exported_packages: int = 0
    exported_events: int = 0
    delivered: int = 0  # packages the server stored (some of their events it may have had already)
    duplicates: int = 0  # packages the server had already stored whole
    events_delivered: int = 0  # events the server stored as new
    events_known: int = 0  # events sent that the server already had
    kept: int = 0
    quarantined: int = 0
    over_budget: int = 0
    dry_run_recorded: int = 0
    outbox_packages: int = 0
    retention_deleted: int = 0
    duration_s: float = 0.0
    failure: str | None = None  # the first undelivered package's reason (the server's message)
    failure_kept_at: str | None = None
    failure_status: int | None = None


def open_outbox(paths: TelemetryPaths, config: Config, counters: CounterStore) -> Outbox:
    return Outbox.from_config(paths, config, counters=counters, other_bytes=spool_size_bytes(paths.spool_dir))


def export_new_events(paths: TelemetryPaths, config: Config, outbox: Outbox, counters: CounterStore,
                      *, progress: Callable[[int, int | None], None] | None = None
                      ) -> tuple[int, int, int, int]:
    """New lines of every source -> packages in the outbox; then checkpoints advance.

    Returns (events read, lines skipped, packages added, events exported).
    """
    store = CheckpointStore.load(paths.checkpoints_file)
    stats = ReadStats()
    reader = NewEventsReader(paths, config, store, stats)
    records = reader.records()
    first = next(records, None)
    packages = exported = 0
    if first is not None:
        staging = ensure_private_dir(paths.staging_dir)
        header, policy = prepare_export(paths, config, None, None)
        output = staging / f"auto-{time.time_ns()}.json"
        built = build_packages(itertools.chain([first], records), header=header, cap=config.max_upload_bytes,
                               output=output, policy=policy, stats=stats, progress=progress)
        try:
            for path, _sha, package_id, events, _size in built.written:
                if events:  # every event undeclared: nothing worth sending
                    outbox.add(Path(path), package_id=package_id)
        finally:
            for path, *_ in built.written:
                Path(path).unlink(missing_ok=True)
            Path(built.report_file).unlink(missing_ok=True)
        packages, exported = sum(1 for w in built.written if w[3]), built.events
    else:
        for _ in records:  # nothing new: still walk every source so offsets and sightings update
            pass
    reader.commit()
    deltas = {"emitted.events": reader.events, "exported.packages": packages, "exported.events": exported}
    if stats.skipped_lines:
        deltas["dropped.undecodable.lines"] = stats.skipped_lines
    counters.increment_many({k: v for k, v in deltas.items() if v})
    return reader.events, stats.skipped_lines, packages, exported


def record_dry_run(outbox: Outbox, config: Config, ledger_file: Path) -> int:
    """Validate every waiting package and record it once as `dry_run`; nothing is sent."""
    recorded = {r.package_id for r in read_history(ledger_file) if r.dry_run}
    count = 0
    for entry in outbox.pending():
        if entry.package_id in recorded:
            continue
        try:
            prepared = prepare_upload(Path(entry.path), config)
        except LocalRejection as rej:
            outbox.quarantine(entry, rej.message, code=rej.code)
            continue
        except FileNotFoundError:
            continue
        outcome = UploadOutcome(outcome="delivered", package_id=prepared.package_id, events=prepared.events,
                                bytes=len(prepared.body), wire_bytes=len(prepared.gzipped),
                                sha256=prepared.sha256, endpoint=config.telemetry.endpoint.rstrip("/"))
        append_receipt(ledger_file, ledger_record_for(outcome, when=utcnow(), dry_run=True))
        count += 1
    return count


def run_auto_job(paths: TelemetryPaths, config: Config, *,
                 dry_run: bool | None = None, progress: ProgressFn | None = None,
                 env: dict[str, str] | None = None, caller: ConsentArgs | None = None,
                 **upload_options: Any) -> AutoRunReport:
    """One run (see the module docstring). Raises ConsentWithdrawnError after
    exporting when consent is withdrawn (config, the daemon's `env`, or the
    `caller` of `sync`); other errors propagate to the scheduler."""
    dry_run = config.telemetry.auto.dry_run if dry_run is None else dry_run
    started = time.monotonic()
    report = AutoRunReport(dry_run=dry_run)
    counters = CounterStore(paths.counters_file)

    def stage(name: str) -> Callable[[int, int | None], None]:
        return lambda done, total: progress(done, total, name) if progress else None

    rotated = apply_rotation_policy(paths.spool_dir, config)
    report.rotated = str(rotated) if rotated else None
    outbox = open_outbox(paths, config, counters)
    outbox.sweep_stale_temp_files()
    (report.read_events, report.skipped_lines, report.exported_packages,
     report.exported_events) = export_new_events(paths, config, outbox, counters,
                                                 progress=stage("export"))
    if dry_run:
        report.dry_run_recorded = record_dry_run(outbox, config, paths.ledger_file)
    elif (blocker := delivery_blocker(config, caller, env)) is not None:
        raise ConsentWithdrawnError(
            f"telemetry consent is withdrawn by {blocker}: nothing was sent",
            hint="packages stay in the outbox; " + hint_for(blocker), details={"blocked_by": blocker})
    else:
        pending = len(outbox.pending())
        if progress and pending:
            progress(0, pending, "upload")
        delivery = send_outbox(outbox, config, paths.ledger_file,
                               budget=DailyUploadBudget.from_config(paths.ledger_file, config),
                               env=env, **upload_options)
        _merge(report, delivery)
        if progress and pending:
            progress(pending, pending, "upload")
    store = CheckpointStore.load(paths.checkpoints_file)
    retained = apply_retention(paths.spool_dir, config, store, outbox, counters,
                               extension_dir=extension_dir(paths, config))
    report.retention_deleted = len(retained.deleted)
    report.outbox_packages = len(outbox.pending())
    report.duration_s = round(time.monotonic() - started, 3)
    log.info("auto.run", **msgspec.to_builtins(report))
    return report


def _merge(report: AutoRunReport, delivery: DeliveryReport) -> None:
    report.delivered, report.duplicates = delivery.delivered, delivery.duplicates
    report.events_delivered, report.kept = delivery.events_delivered, delivery.kept
    report.events_known = delivery.events_known
    report.quarantined, report.over_budget = delivery.quarantined, delivery.over_budget
    failed = next((e for e in delivery.entries
                   if e.outcome not in ("delivered", "duplicate", "dry_run", "not_tried")), None)
    if failed is not None:
        report.failure = failed.message or failed.outcome
        report.failure_kept_at, report.failure_status = failed.kept_at, failed.status_code
