"""Local retention (`telemetry.retention.*`, docs/cli.md): delete only what may go.

Candidates are the *final* files: rotated spool files and, when the
extension's folder is given, the files its writer sealed (`*.sealed.jsonl`;
the active spool file and the extension's other files are never touched).
A final file is *delivered* when its checkpoint says it was read to the end
(`consumed_ns`) and no package built at or before that moment still waits in
the outbox (packages are added before checkpoints advance, so every package
holding its events is that old or older).

- `keep`: delete final files older than this (by modification time) that
  are delivered — or, in manual mode, any of them.
- `max_total_mb`: while spool + sealed extension files + outbox is over the
  cap, delete delivered final files, oldest first. (The outbox bounds
  itself: `Outbox`.)

Every deletion is counted (`retention.files`, `retention.bytes`) and its
checkpoint forgotten.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from branchpy_telemetry.client.contracts.config import Config
from branchpy_telemetry.client.contracts.timewindow import parse_duration
from branchpy_telemetry.client.emitter.spool import ACTIVE_NAME, list_spool_files
from branchpy_telemetry.daemon.counters import CounterStore
from branchpy_telemetry.daemon.delivery.outbox import Outbox
from branchpy_telemetry.daemon.export.checkpoints import CheckpointStore
from branchpy_telemetry.daemon.export.spool_reader import sealed_extension_files

log = structlog.get_logger("branchpy.retention")

MB = 1024 * 1024


@dataclass
class RetentionResult:
    deleted: list[str] = field(default_factory=list)
    bytes: int = 0


def is_delivered(path: Path, store: CheckpointStore, oldest_waiting_ns: int | None) -> bool:
    entry = store.find_by_path(path)
    if entry is None or entry.consumed_ns is None:
        return False
    return oldest_waiting_ns is None or entry.consumed_ns < oldest_waiting_ns


def apply_retention(spool_dir: Path, config: Config, store: CheckpointStore, outbox: Outbox,
                    counters: CounterStore | None = None, *, now: float | None = None,
                    extension_dir: Path | None = None) -> RetentionResult:
    """Delete what the retention settings allow (see the module docstring); saves the store."""
    now = time.time() if now is None else now
    keep_s = parse_duration(config.telemetry.retention.keep).total_seconds()
    manual = config.telemetry.mode == "manual"
    waiting = outbox.pending()
    oldest_waiting_ns = waiting[0].created_ns if waiting else None
    rotated = []
    final = [p for p in list_spool_files(spool_dir) if p.name != ACTIVE_NAME]
    if extension_dir is not None:
        final += sealed_extension_files(extension_dir)
    for path in final:
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        rotated.append((path, st.st_size, st.st_mtime))
    rotated.sort(key=lambda item: item[2])  # oldest first
    result = RetentionResult()
    total = sum(size for _, size, _ in rotated) + sum(e.size for e in waiting)
    try:
        active_size = (Path(spool_dir) / ACTIVE_NAME).stat().st_size
    except FileNotFoundError:
        active_size = 0
    total += active_size
    cap = config.telemetry.retention.max_total_mb * MB
    for path, size, mtime in rotated:  # oldest first
        delivered = is_delivered(path, store, oldest_waiting_ns)
        too_old = now - mtime > keep_s and (delivered or manual)
        over_cap = total > cap and delivered
        if not (too_old or over_cap):
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        total -= size
        result.deleted.append(str(path))
        result.bytes += size
        store.forget_where(lambda e, p=str(path): e.path == p)
        log.info("retention.deleted", file=path.name, bytes=size, delivered=delivered,
                 reason="age" if too_old else "max_total_mb")
    if result.deleted:
        store.save()
        if counters is not None:
            counters.increment_many({"retention.files": len(result.deleted), "retention.bytes": result.bytes})
    return result
