"""Rotation by size and by age (`telemetry.rotation.*`)."""

from __future__ import annotations

import os
from datetime import timedelta

from branchpy_telemetry.client.contracts.config import load_config
from branchpy_telemetry.client.contracts.event import EventRecord, event_encoder
from branchpy_telemetry.client.contracts.timewindow import format_ts, utcnow
from branchpy_telemetry.client.emitter.spool import list_spool_files
from branchpy_telemetry.client.emitter.stamping import new_event_id
from branchpy_telemetry.daemon.scheduling.rotation_policy import (
    apply_rotation_policy,
    first_event_time,
    rotation_reason,
)


def write_events(path, n: int, ts) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as fh:
        for _ in range(n):
            rec = EventRecord(event_id=new_event_id(), ts=format_ts(ts), category="command", source="cli",
                              name="analyze", attrs={"pad": "x" * 150})
            fh.write(event_encoder.encode(rec) + b"\n")


def config(paths, **overrides):
    return load_config(paths.config_file, env={}, overrides=overrides)


def test_a_missing_or_empty_active_file_is_never_due(paths):
    assert rotation_reason(paths.active_spool, config(paths), utcnow()) is None
    paths.spool_dir.mkdir(parents=True)
    paths.active_spool.touch()
    assert rotation_reason(paths.active_spool, config(paths), utcnow()) is None


def test_a_file_over_max_file_mb_is_rotated_for_size(paths):
    now = utcnow()
    write_events(paths.active_spool, 100, now)  # ~20 KB
    small = config(paths, **{"telemetry.rotation.max_file_mb": 0.01})
    assert rotation_reason(paths.active_spool, config(paths), now) is None
    assert rotation_reason(paths.active_spool, small, now) == "size"
    rotated = apply_rotation_policy(paths.spool_dir, small, now)
    assert rotated is not None and list_spool_files(paths.spool_dir) == [rotated]


def test_age_is_the_first_events_time_not_the_files(paths):
    now = utcnow()
    write_events(paths.active_spool, 1, now - timedelta(hours=25))
    write_events(paths.active_spool, 1, now)
    assert first_event_time(paths.active_spool) <= now - timedelta(hours=25)
    assert rotation_reason(paths.active_spool, config(paths), now) == "age"
    assert rotation_reason(paths.active_spool, config(paths, **{"telemetry.rotation.max_age": "2d"}),
                           now) is None


def test_an_undecodable_first_line_falls_back_to_the_modification_time(paths):
    paths.spool_dir.mkdir(parents=True)
    paths.active_spool.write_bytes(b"garbage\n")
    old = (utcnow() - timedelta(days=2)).timestamp()
    os.utime(paths.active_spool, (old, old))
    assert rotation_reason(paths.active_spool, config(paths), utcnow()) == "age"


def test_nothing_is_rotated_when_nothing_is_due(paths):
    write_events(paths.active_spool, 3, utcnow())
    assert apply_rotation_policy(paths.spool_dir, config(paths)) is None
    assert list_spool_files(paths.spool_dir) == [paths.active_spool]
