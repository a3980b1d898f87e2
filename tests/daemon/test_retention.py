"""Retention deletes only rotated files that were delivered (or, in manual
mode, are older than keep); oldest first under max_total_mb; never the active
file, never what still waits in the outbox."""

from __future__ import annotations

import os
import time

from branchpy_telemetry.client.contracts.config import load_config
from branchpy_telemetry.client.emitter.spool import list_spool_files, rotate_spool
from branchpy_telemetry.daemon.counters import CounterStore
from branchpy_telemetry.daemon.delivery.outbox import Outbox
from branchpy_telemetry.daemon.export.checkpoints import CheckpointStore
from branchpy_telemetry.daemon.scheduling.retention import apply_retention

from .test_checkpoints import append, run

MB = 1024 * 1024


def config(paths, **overrides):
    return load_config(paths.config_file, env={}, overrides=overrides)


def rotated_files(paths, n: int, events: int = 5) -> list:
    out = []
    for _ in range(n):
        append(paths.active_spool, events)
        out.append(rotate_spool(paths.spool_dir))
    return out


def age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def retain(paths, cfg, outbox=None):
    store = CheckpointStore.load(paths.checkpoints_file)
    outbox = outbox or Outbox(paths, 10 * MB)
    return apply_retention(paths.spool_dir, cfg, store, outbox, CounterStore(paths.counters_file))


def test_auto_mode_deletes_old_files_only_once_they_are_consumed_and_delivered(paths):
    cfg = config(paths, **{"telemetry.mode": "auto", "telemetry.retention.keep": "1h"})
    [old] = rotated_files(paths, 1)
    age(old, 7200)
    assert retain(paths, cfg).deleted == []  # never read: not delivered
    outbox = Outbox(paths, 10 * MB)
    waiting = outbox.add(b'{"package_id": "p1"}')  # its events' package: added before the checkpoint
    run(paths)
    assert retain(paths, cfg, outbox).deleted == []  # its package still waits
    outbox.mark_delivered(waiting)
    assert retain(paths, cfg, outbox).deleted == [str(old)]
    assert CounterStore(paths.counters_file).snapshot()["retention.files"] == 1
    assert CheckpointStore.load(paths.checkpoints_file).find_by_path(old) is None


def test_manual_mode_deletes_files_older_than_keep_even_undelivered_and_keeps_younger(paths):
    cfg = config(paths, **{"telemetry.retention.keep": "1d"})
    old, young = rotated_files(paths, 2)
    age(old, 2 * 86400)
    append(paths.active_spool, 1)
    age(paths.active_spool, 3 * 86400)
    assert retain(paths, cfg).deleted == [str(old)]
    assert list_spool_files(paths.spool_dir) == [young, paths.active_spool]


def test_over_max_total_mb_delivered_files_go_oldest_first_and_undelivered_stay(paths):
    files = rotated_files(paths, 4, events=400)  # ~70 KB each
    run(paths)  # all four consumed; nothing waits in the outbox
    append(paths.active_spool, 2)
    extra = rotate_spool(paths.spool_dir)  # not consumed: not delivered
    size = sum(p.stat().st_size for p in files)
    cfg = config(paths, **{"telemetry.mode": "auto",
                           "telemetry.retention.max_total_mb": (size / 2) / MB})
    deleted = retain(paths, cfg).deleted
    assert deleted == [str(p) for p in files[:len(deleted)]] and 2 <= len(deleted) < 4
    assert extra.exists()


def test_sealed_extension_files_are_retained_like_rotated_ones_and_other_extension_files_never(paths):
    cfg = config(paths, **{"telemetry.mode": "auto", "telemetry.retention.keep": "1h"})
    sealed = paths.extension_dir / "ext-20261201T000000000-4242-0000000a.sealed.jsonl"
    writing = paths.extension_dir / "ext-20261201T000000000-4343-0000000b.jsonl"
    other = paths.extension_dir / "notes.jsonl"
    for path in (sealed, writing, other):
        append(path, 3)
        age(path, 7200)

    def retain_with_extension():
        store = CheckpointStore.load(paths.checkpoints_file)
        return apply_retention(paths.spool_dir, cfg, store, Outbox(paths, 10 * MB),
                               CounterStore(paths.counters_file), extension_dir=paths.extension_dir)

    assert retain_with_extension().deleted == []  # never read: not delivered
    run(paths)
    assert retain_with_extension().deleted == [str(sealed)]
    assert writing.exists() and other.exists()
    assert retain(paths, config(paths, **{"telemetry.retention.keep": "1s"})).deleted == []  # spool only
