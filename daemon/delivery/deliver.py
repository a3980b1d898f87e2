"""Deliver packages: the outbox drain of an auto/sync run, and `upload --file`.

Glue over `uploader` (HTTP), `outbox` (keep / quarantine), `ledger`
(receipts), `budget` and `counters`. Order matters for exactly-once: the
receipt is appended to the ledger BEFORE the package leaves the outbox, so
a crash in between re-sends a package the backend recognizes as a duplicate
(package_id is its idempotency key) instead of losing it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import structlog

from branchpy_telemetry.client.contracts.config import Config
from branchpy_telemetry.client.contracts.errors import (
    NotFoundError,
    PrivacyViolationError,
    TelemetryError,
    UploadFailedError,
    ValidationRejectedError,
)
from branchpy_telemetry.client.contracts.timewindow import format_ts
from branchpy_telemetry.daemon.delivery.budget import DailyUploadBudget
from branchpy_telemetry.daemon.delivery.ledger import LedgerRecord, append_receipt, read_history
from branchpy_telemetry.daemon.delivery.outbox import Outbox, OutboxEntry
from branchpy_telemetry.daemon.delivery.uploader import (
    LocalRejection,
    UploadOutcome,
    prepare_upload,
    upload_package,
)

log = structlog.get_logger("branchpy.delivery")


class EntryResult(msgspec.Struct, kw_only=True):
    """One package's delivery: its outcome, the server's receipt, and where a kept copy is."""

    name: str
    package_id: str | None
    outcome: str  # an uploader outcome, or "dry_run" / "over_budget"
    events: int = 0  # events in the package
    new_events: int | None = None  # of those, stored as new by the server (None: not sent)
    known_events: int | None = None  # of those, the server already had (sent before in any package)
    bytes: int = 0
    status_code: int | None = None
    receipt: str | None = None
    message: str | None = None  # the server's (or our) reason, for the user
    kept_at: str | None = None  # where the package still is (outbox or quarantine)
    quarantined: bool = False


class DeliveryReport(msgspec.Struct, kw_only=True):
    delivered: int = 0
    duplicates: int = 0
    kept: int = 0  # left in the outbox for the next run
    quarantined: int = 0
    dry_run: int = 0
    over_budget: int = 0
    events_delivered: int = 0  # events the server stored as new
    events_known: int = 0  # events in delivered packages that the server already had
    entries: list[EntryResult] = []

    @property
    def failed(self) -> bool:
        """True when something could not be delivered (the CLI exits 5)."""
        return self.kept > 0 or self.quarantined > 0


class UploadResult(msgspec.Struct, kw_only=True):
    """What `upload` sent: one result per package (a failed one is the error reply instead)."""

    dry_run: bool
    packages: int
    events: int
    results: list[EntryResult]


def ledger_record_for(outcome: UploadOutcome, *, when: datetime, dry_run: bool = False,
                      file: str | None = None) -> LedgerRecord:
    return LedgerRecord(when=format_ts(when), package_id=outcome.package_id, events=outcome.events,
                        bytes=outcome.bytes, endpoint=outcome.endpoint, receipt=outcome.receipt,
                        outcome="dry_run" if dry_run else outcome.outcome, attempts=outcome.attempts,
                        dry_run=dry_run, status_code=outcome.status_code, wire_bytes=outcome.wire_bytes,
                        accepted_events=outcome.accepted_events,
                        duplicate_events=outcome.duplicate_events, file=file)


def send_outbox(outbox: Outbox, config: Config, ledger_file: Path, *, dry_run: bool = False,
                budget: DailyUploadBudget | None = None,
                clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                **upload_options: Any) -> DeliveryReport:
    """Send every waiting package, oldest first.

    Stops at the first package that could not be delivered for a reason that
    will hit the next one too (backend down, throttled, bad key/endpoint):
    it and the rest stay in the outbox. Package-fault rejections are
    quarantined and the run continues. `dry_run` validates and records, never sends.
    """
    report = DeliveryReport()
    pending = outbox.pending()
    counted = receipted_packages(ledger_file) if pending else set()
    for index, entry in enumerate(pending):
        if budget is not None and not dry_run and not budget.budget_allows(entry.size, clock()):
            rest = len(pending) - index
            report.over_budget += rest
            report.entries.extend(EntryResult(name=e.name, package_id=e.package_id, outcome="over_budget",
                                              bytes=e.size, kept_at=e.path) for e in pending[index:])
            log.info("delivery.over_budget", waiting=rest, budget_bytes=budget.budget_bytes)
            break
        if dry_run:
            report.entries.append(_dry_run_entry(entry, config, ledger_file, clock()))
            report.dry_run += 1
            continue
        try:
            result = upload_package(Path(entry.path), config, **upload_options)
        except NotFoundError:
            continue  # removed meanwhile (purge, a concurrent run): nothing to send
        report.entries.append(_settle(outbox, entry, result, ledger_file, clock(), report, counted))
        if result.outcome in ("retry", "throttled") or (result.outcome == "rejected"
                                                        and not result.should_quarantine):
            report.kept += len(pending) - index - 1  # the rest wait too
            report.entries.extend(EntryResult(name=e.name, package_id=e.package_id, outcome="not_tried",
                                              bytes=e.size, kept_at=e.path) for e in pending[index + 1:])
            break
    return report


def receipted_packages(ledger_file: Path) -> set[str]:
    """Package ids the ledger holds a delivery receipt for (dry runs aside): already counted."""
    return {r.package_id for r in read_history(ledger_file) if not r.dry_run and r.package_id}


def stored_counts(result: UploadOutcome) -> tuple[int, int]:
    """(new, already stored) events of a delivered package, as the server counted them."""
    if result.outcome == "duplicate":
        return 0, result.events  # the whole package was stored before
    new = result.accepted_events if result.accepted_events is not None else result.events
    return new, result.duplicate_events or 0


def upload_counts(result: UploadOutcome, counted: set[str]) -> dict[str, int]:
    """What one delivered package adds to the counters, once per package id.

    A duplicate answer for a package without a receipt means an earlier
    attempt stored it and its answer was lost (a gateway timeout, a cut
    connection, a crash before the receipt): its events are uploaded, and
    were counted nowhere yet.
    """
    first = result.package_id not in counted
    if result.package_id:
        counted.add(result.package_id)
    new, known = stored_counts(result)
    if result.outcome == "delivered":
        return {"uploaded.packages": 1, "uploaded.events": new, "duplicates.events": known}
    if first:
        return {"duplicates.packages": 1, "uploaded.packages": 1, "uploaded.events": result.events}
    return {"duplicates.packages": 1, "duplicates.events": known}


def _settle(outbox: Outbox, entry: OutboxEntry, result: UploadOutcome, ledger_file: Path,
            now: datetime, report: DeliveryReport, counted: set[str]) -> EntryResult:
    base = EntryResult(name=entry.name, package_id=result.package_id or entry.package_id,
                       outcome=result.outcome, events=result.events, bytes=result.bytes or entry.size,
                       status_code=result.status_code, receipt=result.receipt,
                       message=result.server_message)
    if result.ok:
        deltas = upload_counts(result, counted)
        append_receipt(ledger_file, ledger_record_for(result, when=now))
        outbox.mark_delivered(entry, result.receipt)
        base.new_events, base.known_events = stored_counts(result)
        report.events_delivered += base.new_events
        report.events_known += base.known_events
        if result.outcome == "delivered":
            report.delivered += 1
        else:
            report.duplicates += 1
        outbox.counters.increment_many({k: v for k, v in deltas.items() if v})  # per package, as the ledger
        return base
    if result.should_quarantine:
        base.kept_at = str(outbox.quarantine(entry, result.server_message or "rejected",
                                             code=result.error_code, status_code=result.status_code,
                                             details=result.details))
        base.quarantined = True
        report.quarantined += 1
        return base
    base.kept_at = entry.path
    report.kept += 1
    return base


def _dry_run_entry(entry: OutboxEntry, config: Config, ledger_file: Path, now: datetime) -> EntryResult:
    try:
        prepared = prepare_upload(Path(entry.path), config)
    except LocalRejection as rej:
        return EntryResult(name=entry.name, package_id=entry.package_id, outcome="rejected",
                           bytes=rej.bytes, message=rej.message, kept_at=entry.path)
    outcome = UploadOutcome(outcome="delivered", package_id=prepared.package_id, events=prepared.events,
                            bytes=len(prepared.body), wire_bytes=len(prepared.gzipped),
                            sha256=prepared.sha256, endpoint=config.telemetry.endpoint.rstrip("/"))
    append_receipt(ledger_file, ledger_record_for(outcome, when=now, dry_run=True))
    return EntryResult(name=entry.name, package_id=prepared.package_id, outcome="dry_run",
                       events=prepared.events, bytes=len(prepared.body), kept_at=entry.path)


def deliver_file(path: Path, config: Config, outbox: Outbox, ledger_file: Path, *,
                 expected_sha256: str | None = None, dry_run: bool = False,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 **upload_options: Any) -> EntryResult:
    """`upload --file`: send exactly the reviewed file (hash checked when known).

    Delivered → receipt in the ledger. Not delivered → the package is kept
    in the outbox (retryable) or quarantined (rejected), and `kept_at` names
    the copy; the user's file is never touched. Raises PackageChangedError,
    NotFoundError, StorageError for local problems.
    """
    path = Path(path)
    if dry_run:
        prepared = prepare_upload(path, config, expected_sha256=expected_sha256)
        outcome = UploadOutcome(outcome="delivered", package_id=prepared.package_id, events=prepared.events,
                                bytes=len(prepared.body), wire_bytes=len(prepared.gzipped),
                                endpoint=config.telemetry.endpoint.rstrip("/"))
        append_receipt(ledger_file, ledger_record_for(outcome, when=clock(), dry_run=True, file=str(path)))
        return EntryResult(name=path.name, package_id=prepared.package_id, outcome="dry_run",
                           events=prepared.events, bytes=len(prepared.body), kept_at=str(path))
    result = upload_package(path, config, expected_sha256=expected_sha256, **upload_options)
    entry_result = EntryResult(name=path.name, package_id=result.package_id, outcome=result.outcome,
                               events=result.events, bytes=result.bytes, status_code=result.status_code,
                               receipt=result.receipt, message=result.server_message)
    if result.ok:
        deltas = upload_counts(result, receipted_packages(ledger_file))
        append_receipt(ledger_file, ledger_record_for(result, when=clock(), file=str(path)))
        outbox.counters.increment_many({k: v for k, v in deltas.items() if v})
        entry_result.new_events, entry_result.known_events = stored_counts(result)
        return entry_result
    entry = outbox.add(path, package_id=result.package_id)
    if result.should_quarantine:
        entry_result.kept_at = str(outbox.quarantine(entry, result.server_message or "rejected",
                                                     code=result.error_code, status_code=result.status_code,
                                                     details=result.details))
        entry_result.quarantined = True
    else:
        entry_result.kept_at = entry.path
    return entry_result


def failure_error(result: EntryResult) -> TelemetryError | None:
    """The error a handler raises for an undelivered package (None when it went through).

    The message carries the server's reason and where the package is kept:
    a rejected package (quarantined) → exit 4 (`privacy_violation` /
    `validation_failed`); anything else (backend down, throttled, bad key or
    endpoint; package kept in the outbox) → `upload_failed`, exit 5.
    """
    if result.outcome in ("delivered", "duplicate", "dry_run"):
        return None
    reason = result.message or result.outcome
    where = f"; the package is kept at {result.kept_at}" if result.kept_at else ""
    details = {"outcome": result.outcome, "status_code": result.status_code, "kept_at": result.kept_at,
               "package_id": result.package_id}
    if result.quarantined:
        cls = PrivacyViolationError if result.status_code == 422 and "privacy" in reason.lower() \
            else ValidationRejectedError
        return cls(f"the package was rejected: {reason}{where}", details=details,
                   hint="it will not be retried; fix the cause and export a fresh package")
    hint = ("check telemetry.api_key and telemetry.endpoint (`branchpy telemetry config show`)"
            if result.outcome == "rejected"
            else "it will be sent again on the next upload or auto-mode run (`branchpy telemetry sync`)")
    return UploadFailedError(f"upload failed: {reason}{where}", details=details, hint=hint)
