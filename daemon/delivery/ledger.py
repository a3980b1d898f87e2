"""The append-only receipts ledger (`paths.ledger_file`, JSON lines).

One line per delivery (or dry run): when, package id, events, bytes,
endpoint, the server's receipt, outcome, attempts, dry_run. Appends are one
`write` on an O_APPEND descriptor, fsynced; a torn last line (crash
mid-append) is skipped on reading and never glued to the next record.
`branchpy telemetry history` reads it newest first.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import msgspec
import structlog

from branchpy_telemetry.client.contracts.errors import StorageError

log = structlog.get_logger("branchpy.ledger")
_append_lock = threading.Lock()


class LedgerRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One upload receipt (or dry run) in the ledger."""

    when: str  # UTC, wire format (client.contracts.timewindow.format_ts)
    package_id: str | None
    events: int
    bytes: int
    endpoint: str
    receipt: str | None = None
    outcome: str  # delivered | duplicate | dry_run
    attempts: int = 0
    dry_run: bool = False
    status_code: int | None = None
    wire_bytes: int | None = None
    accepted_events: int | None = None
    duplicate_events: int | None = None
    file: str | None = None  # the package file the user named (upload --file)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(LedgerRecord)  # unknown (future) fields are ignored


def append_receipt(ledger_file: Path, record: LedgerRecord) -> None:
    """Append one record durably."""
    line = _encoder.encode(record) + b"\n"
    try:
        ledger_file.parent.mkdir(parents=True, exist_ok=True)
        with _append_lock:
            fd = os.open(ledger_file, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                if _ends_torn(fd):
                    line = b"\n" + line  # never glue a record onto a half line
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
    except OSError as exc:
        raise StorageError(f"cannot append to the ledger {ledger_file}: {exc.strerror}",
                           hint="free disk space or fix the folder's permissions") from None
    log.info("ledger.appended", package_id=record.package_id, outcome=record.outcome, dry_run=record.dry_run)


def read_history(ledger_file: Path, limit: int | None = None) -> list[LedgerRecord]:
    """Records newest first (at most `limit`); unreadable lines are skipped."""
    try:
        data = ledger_file.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StorageError(f"cannot read the ledger {ledger_file}: {exc.strerror}") from None
    records: list[LedgerRecord] = []
    for line in reversed(data.splitlines()):
        if limit is not None and len(records) >= limit:
            break
        if not line.strip():
            continue
        try:
            records.append(_decoder.decode(line))
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
    return records


def _ends_torn(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"
