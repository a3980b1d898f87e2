"""The persistent outbox: built packages waiting to be delivered.

One file per package under `paths.outbox_dir`, named
`<created_ns:020d>-<package_id>.json`, so name order is age order. Files are
written atomically (hidden temp + fsync + rename): a crash mid-write leaves
no half file visible; `sweep_stale_temp_files` removes such leftovers (the
daemon calls it at start-up, in every delivery and in housekeeping; opening
an outbox, as `status` does, changes nothing on disk). The outbox is bounded
(`telemetry.retention.max_total_mb`): when over, the oldest packages are
dropped first and every drop is counted in the persistent counters.
Rejected packages move to `paths.quarantine_dir` with a `.reason.json`.

Writers hold the daemon's delivery lock (`daemon/delivery/delivery_lock.py`), so one
delivery run at a time changes the outbox.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import structlog

from branchpy_telemetry.client.contracts.config import Config
from branchpy_telemetry.client.contracts.errors import StorageError
from branchpy_telemetry.client.contracts.paths import TelemetryPaths, ensure_private_dir
from branchpy_telemetry.client.infra.atomic_write import fsync_dir, is_temp_file, write_atomic
from branchpy_telemetry.daemon.counters import CounterStore

log = structlog.get_logger("branchpy.outbox")

STALE_TEMP_SECONDS = 300.0
DROP_REASON_FULL = "outbox_full"


class OutboxEntry(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    name: str
    size: int
    created_ns: int
    package_id: str | None


class _PackageHead(msgspec.Struct):
    package_id: str | None = None
    summary: _SummaryHead | None = None


class _SummaryHead(msgspec.Struct):
    event_count: int = 0


_head_decoder = msgspec.json.Decoder(_PackageHead)


def read_package_head(data: bytes) -> tuple[str | None, int]:
    """(package_id, event_count) from package bytes, leniently; (None, 0) if unreadable."""
    try:
        head = _head_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None, 0
    return head.package_id, head.summary.event_count if head.summary else 0


def count_package_events(data: bytes) -> int:
    """The events a package holds: its summary's count, or for a file that no longer
    decodes (corrupted on disk, cut short) the events still in it, one `"event_id":` each."""
    try:
        head = _head_decoder.decode(data)
        if head.summary is not None:
            return head.summary.event_count
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        pass
    return data.count(b'"event_id":')


class Outbox:
    def __init__(self, paths: TelemetryPaths, max_total_bytes: int, *, counters: CounterStore | None = None):
        if max_total_bytes <= 0:
            raise ValueError("max_total_bytes must be > 0")
        self.dir = paths.outbox_dir
        self.quarantine_dir = paths.quarantine_dir
        self.max_total_bytes = int(max_total_bytes)
        self.counters = counters or CounterStore(paths.counters_file)
        self._last_ns = 0

    @classmethod
    def from_config(cls, paths: TelemetryPaths, config: Config, *, counters: CounterStore | None = None,
                    other_bytes: int = 0) -> Outbox:
        """Bounded by `telemetry.retention.max_total_mb` minus `other_bytes` (e.g. the spool's size)."""
        limit = int(config.telemetry.retention.max_total_mb * 1024 * 1024) - int(other_bytes)
        return cls(paths, max(1, limit), counters=counters)

    # -- reading -----------------------------------------------------------
    def pending(self) -> list[OutboxEntry]:
        """Every waiting package, oldest first."""
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StorageError(f"cannot read the outbox {self.dir}: {exc.strerror}",
                               hint="it must be a folder this user can read") from None
        entries = []
        for name in names:
            if name.startswith(".") or not name.endswith(".json"):
                continue
            path = self.dir / name
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue  # delivered meanwhile
            entries.append(_entry_for(path, size))
        return entries

    def total_bytes(self) -> int:
        return sum(e.size for e in self.pending())

    def find(self, package_id: str) -> OutboxEntry | None:
        return next((e for e in self.pending() if e.package_id == package_id), None)

    # -- writing -----------------------------------------------------------
    def add(self, package: bytes | Path, *, package_id: str | None = None) -> OutboxEntry:
        """Store a package (bytes, or a file to copy). Adding a package id that is
        already waiting returns the existing entry. May drop the oldest packages."""
        data = _read(package) if isinstance(package, Path) else bytes(package)
        if package_id is None:
            package_id, _ = read_package_head(data)
        if package_id and (existing := self.find(package_id)):
            return existing
        name = f"{self._next_ns():020d}-{_safe_id(package_id)}.json"
        path = self.dir / name
        try:
            ensure_private_dir(self.dir)
            write_atomic(path, data)
        except OSError as exc:
            raise StorageError(f"cannot write to the outbox {self.dir}: {exc.strerror}",
                               hint="free disk space or fix the folder's permissions") from None
        entry = _entry_for(path, len(data))
        log.info("outbox.added", name=name, bytes=len(data), package_id=package_id)
        self._enforce_bound(keep=entry)
        return entry

    def mark_delivered(self, entry: OutboxEntry, receipt: str | None = None) -> None:
        """The backend has it (record the receipt in the ledger first): remove it."""
        Path(entry.path).unlink(missing_ok=True)
        fsync_dir(self.dir)
        log.info("outbox.delivered", name=entry.name, package_id=entry.package_id, receipt=receipt)

    def quarantine(self, entry: OutboxEntry, reason: str, *, code: str | None = None,
                   status_code: int | None = None, details: Any = None) -> Path:
        """Move a rejected package aside with a reason file; it is never retried."""
        ensure_private_dir(self.quarantine_dir)
        target = self.quarantine_dir / entry.name
        try:
            events = count_package_events(Path(entry.path).read_bytes())
        except FileNotFoundError:
            raise StorageError(f"{entry.path} is no longer in the outbox") from None
        record = {"reason": reason, "code": code, "status_code": status_code, "details": details,
                  "package_id": entry.package_id, "events": events, "quarantined_at": time.time()}
        write_atomic(target.with_name(target.name + ".reason.json"),
                     json.dumps(record, indent=1, default=str).encode())
        try:
            os.replace(entry.path, target)
        except FileNotFoundError:
            raise StorageError(f"{entry.path} is no longer in the outbox") from None
        fsync_dir(self.dir)
        fsync_dir(self.quarantine_dir)
        self.counters.increment_many({"quarantined.packages": 1, "quarantined.events": events})
        log.warning("outbox.quarantined", name=entry.name, package_id=entry.package_id, code=code,
                    status=status_code)
        return target

    def quarantined_events(self) -> int:
        """Events in the quarantine folder (from each reason file; older ones: from the package)."""
        total = 0
        for path, reason in self.quarantined():
            events = reason.get("events")
            if not isinstance(events, int):
                try:
                    events = count_package_events(path.read_bytes())
                except FileNotFoundError:
                    continue
            total += events
        return total

    def quarantined(self) -> list[tuple[Path, dict]]:
        """(package path, reason record) for every quarantined package, oldest first."""
        try:
            names = sorted(os.listdir(self.quarantine_dir))
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            if name.startswith(".") or not name.endswith(".json") or name.endswith(".reason.json"):
                continue
            path = self.quarantine_dir / name
            try:
                reason = json.loads(path.with_name(name + ".reason.json").read_bytes())
            except (FileNotFoundError, ValueError):
                reason = {}
            out.append((path, reason))
        return out

    # -- maintenance ---------------------------------------------------------
    def sweep_stale_temp_files(self) -> None:
        """Remove temp files a crash left behind (old enough that no writer owns them)."""
        for directory in (self.dir, self.quarantine_dir):
            try:
                candidates = list(directory.iterdir())
            except (FileNotFoundError, NotADirectoryError):
                continue
            cutoff = time.time() - STALE_TEMP_SECONDS
            for path in candidates:
                try:
                    if is_temp_file(path) and path.stat().st_mtime < cutoff:
                        path.unlink()
                        log.info("outbox.swept_temp_file", name=path.name)
                except FileNotFoundError:
                    continue

    # -- internals -----------------------------------------------------------
    def _enforce_bound(self, keep: OutboxEntry) -> None:
        entries = self.pending()
        total = sum(e.size for e in entries)
        for victim in entries:
            if total <= self.max_total_bytes:
                break
            if victim.name == keep.name:
                continue  # never drop what we were just asked to store
            try:
                data = Path(victim.path).read_bytes()
                Path(victim.path).unlink()
            except FileNotFoundError:
                continue
            total -= victim.size
            _, events = read_package_head(data)
            self.counters.increment_many({f"dropped.{DROP_REASON_FULL}.packages": 1,
                                          f"dropped.{DROP_REASON_FULL}.events": events})
            log.warning("outbox.dropped", name=victim.name, package_id=victim.package_id,
                        events=events, reason=DROP_REASON_FULL, limit_bytes=self.max_total_bytes)
        fsync_dir(self.dir)

    def _next_ns(self) -> int:
        now = time.time_ns()
        self._last_ns = max(now, self._last_ns + 1)
        return self._last_ns


def _entry_for(path: Path, size: int) -> OutboxEntry:
    stem = path.name[: -len(".json")]
    created, _, package_id = stem.partition("-")
    return OutboxEntry(path=str(path), name=path.name, size=size,
                       created_ns=int(created) if created.isdigit() else 0,
                       package_id=None if not package_id or package_id.startswith("unknown-") else package_id)


def _safe_id(package_id: str | None) -> str:
    if package_id and all(c.isalnum() or c in "-_" for c in package_id) and len(package_id) <= 80:
        return package_id
    return "unknown-" + uuid.uuid4().hex[:12]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StorageError(f"{path}: cannot read: {exc.strerror}") from None
