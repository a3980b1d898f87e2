"""`purge yes [reset_id]`: forget local data — spool, outbox (and quarantine), ledger,
the records of exported and reviewed package files (`exports.jsonl`,
`reviews.jsonl`) and the staging folder.

The active spool is rotated first (writers move to a fresh file, so an event
emitted meanwhile is kept, not half-deleted), then every rotated file goes.
Checkpoints of the spool go with it; those of the extension's files stay
(its folder is not ours to delete, and its events must not be sent twice).
Runs under the delivery lock, so never in the middle of an auto run.
`reset_id` gives the install a new governance_id. Without `yes` nothing
happens (the CLI asks on a TTY; scripts pass --yes).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import msgspec

from branchpy_telemetry.client.contracts.errors import TelemetryError, UsageError
from branchpy_telemetry.client.emitter.spool import ACTIVE_NAME, list_spool_files, rotate_spool
from branchpy_telemetry.daemon.control.context import RequestContext
from branchpy_telemetry.daemon.control.handlers.args import parse_args
from branchpy_telemetry.daemon.export.checkpoints import CheckpointStore

LOCK_TIMEOUT_S = 60.0


class PurgeArgs(msgspec.Struct, forbid_unknown_fields=True):
    """Forget local data; nothing happens without `yes`. `reset_id` also gives a new governance id."""

    yes: bool = False
    reset_id: bool = False


class PurgeRemoved(msgspec.Struct, kw_only=True):
    spool_files: int
    outbox_files: int
    quarantine_files: int
    ledger: bool


class PurgeResult(msgspec.Struct, kw_only=True):
    """What was deleted, and whether the install got a new governance id."""

    removed: PurgeRemoved
    governance_id_reset: bool


def handle(ctx: RequestContext, args: dict[str, Any]) -> PurgeResult:
    spec = parse_args(args, PurgeArgs)
    if not spec.yes:
        raise UsageError("purge deletes the local spool, outbox and ledger: confirm with yes",
                         hint="branchpy telemetry purge --yes")
    paths = ctx.paths
    if not ctx.daemon.delivery_lock.acquire("purge", LOCK_TIMEOUT_S):
        raise TelemetryError("a delivery run is still going", hint="try again in a minute")
    try:
        rotate_spool(paths.spool_dir)
        spool = [p for p in list_spool_files(paths.spool_dir) if p.name != ACTIVE_NAME]
        removed = PurgeRemoved(spool_files=_remove(spool), outbox_files=_remove(_files(paths.outbox_dir)),
                               quarantine_files=_remove(_files(paths.quarantine_dir)),
                               ledger=_remove([paths.ledger_file]) == 1)
        _remove([paths.exports_file, paths.reviews_file])
        shutil.rmtree(paths.staging_dir, ignore_errors=True)
        store = CheckpointStore.load(paths.checkpoints_file)
        store.forget_where(lambda e: e.kind == "spool")
        store.save()
    finally:
        ctx.daemon.delivery_lock.release()
    if spec.reset_id:
        from branchpy_telemetry.daemon.identity import reset_governance_id

        reset_governance_id(paths)
    return PurgeResult(removed=removed, governance_id_reset=spec.reset_id)


def _files(folder: Path) -> list[Path]:
    try:
        return [folder / name for name in os.listdir(folder)]
    except FileNotFoundError:
        return []


def _remove(files: list[Path]) -> int:
    count = 0
    for path in files:
        try:
            path.unlink()
            count += 1
        except (FileNotFoundError, IsADirectoryError):
            continue
    return count
