"""Checkpoints and the checkpointed source reader: file identity survives
renames (spool rotation, the extension renaming its files) and not inode
reuse; half-written lines wait; nothing is read twice or skipped."""

from __future__ import annotations

import os

import pytest

from branchpy_telemetry.client.contracts.config import load_config
from branchpy_telemetry.client.contracts.event import EventRecord, event_encoder
from branchpy_telemetry.client.contracts.timewindow import format_ts, utcnow
from branchpy_telemetry.client.emitter.spool import rotate_spool
from branchpy_telemetry.client.emitter.stamping import new_event_id
from branchpy_telemetry.daemon.export.checkpoints import VANISHED_GRACE_S, CheckpointStore, identify
from branchpy_telemetry.daemon.export.source_reader import NewEventsReader


def line(name: str = "analyze") -> tuple[str, bytes]:
    rec = EventRecord(event_id=new_event_id(), ts=format_ts(utcnow()), category="command", source="cli",
                      name=name)
    return rec.event_id, event_encoder.encode(rec) + b"\n"


def append(path, n: int) -> list[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    ids, data = [], b""
    for _ in range(n):
        event_id, raw = line()
        ids.append(event_id)
        data += raw
    with open(path, "ab") as fh:
        fh.write(data)
    return ids


def run(paths, config=None, now=None) -> list[str]:
    """One delivery run's read: the event ids read, then the offsets committed."""
    config = config or load_config(paths.config_file, env={})
    reader = NewEventsReader(paths, config, CheckpointStore.load(paths.checkpoints_file))
    ids = [r.event_id for r in reader.records()]
    reader.commit(now=now)
    return ids


def identity_of(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return identify(fd)
    finally:
        os.close(fd)


def test_identity_needs_a_complete_first_line_and_survives_a_rename(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"half": ')
    assert identity_of(path) is None
    with open(path, "ab") as fh:
        fh.write(b'1}\n{"second": 2}\n')
    first = identity_of(path)
    path.rename(tmp_path / "b.jsonl")
    assert identity_of(tmp_path / "b.jsonl") == first


def test_a_reused_inode_with_another_first_line_is_another_file(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(line()[1])
    before = identity_of(path)
    with open(path, "r+b") as fh:  # same inode, new content: what inode reuse looks like
        fh.truncate(0)
        fh.write(line()[1])
    after = identity_of(path)
    assert (after.dev, after.ino) == (before.dev, before.ino) and after.key != before.key


def test_store_round_trips_atomically_and_an_unreadable_file_starts_empty(paths, tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(line()[1])
    store = CheckpointStore(paths.checkpoints_file)
    store.advance(identity_of(path), 42, path=path, kind="spool", consumed_ns=7)
    store.save()
    loaded = CheckpointStore.load(paths.checkpoints_file)
    assert loaded.offset(identity_of(path)) == 42 and loaded.get(identity_of(path)).consumed_ns == 7
    assert [p.name for p in paths.checkpoints_file.parent.iterdir() if p.name.startswith(".")] == []
    paths.checkpoints_file.write_text("{not json")
    assert CheckpointStore.load(paths.checkpoints_file).entries == {}


def test_a_half_written_last_line_is_not_consumed_until_it_is_complete(paths):
    ids = append(paths.active_spool, 3)
    event_id, raw = line()
    with open(paths.active_spool, "ab") as fh:
        fh.write(raw[:20])
    assert run(paths) == ids
    with open(paths.active_spool, "ab") as fh:
        fh.write(raw[20:])
    assert run(paths) == [event_id]
    assert run(paths) == []


def test_rotation_between_runs_continues_the_rotated_file_at_its_offset(paths):
    first = append(paths.active_spool, 4)
    assert run(paths) == first
    more = append(paths.active_spool, 2)
    rotated = rotate_spool(paths.spool_dir)
    newest = append(paths.active_spool, 3)
    assert rotated is not None and run(paths) == more + newest
    assert run(paths) == []


def test_an_extension_file_renamed_between_runs_keeps_its_checkpoint(paths):
    ext = paths.extension_dir / "telemetry-current.jsonl"
    first = append(ext, 3)
    assert run(paths) == first
    later = append(ext, 2)
    ext.rename(paths.extension_dir / "telemetry-2026-11-28.jsonl")
    assert run(paths) == later


def test_a_vanished_files_checkpoint_waits_out_the_grace_period_then_is_forgotten(paths):
    ext = paths.extension_dir / "a.jsonl"
    append(ext, 2)
    t0 = 1_000_000.0
    run(paths, now=t0)
    hidden = paths.extension_dir.parent / "moved-away.jsonl"
    ext.rename(hidden)  # mid-rename by the extension: gone from the folder for a while
    run(paths, now=t0 + VANISHED_GRACE_S / 2)
    assert len(CheckpointStore.load(paths.checkpoints_file).entries) == 1
    hidden.rename(paths.extension_dir / "b.jsonl")
    assert run(paths, now=t0 + VANISHED_GRACE_S / 2 + 1) == []  # back under a new name: nothing twice
    hidden_again = paths.extension_dir / "b.jsonl"
    hidden_again.unlink()
    run(paths, now=t0 + 3 * VANISHED_GRACE_S)
    assert CheckpointStore.load(paths.checkpoints_file).entries == {}


def test_a_file_truncated_below_its_checkpoint_is_read_again_from_the_start(paths):
    ext = paths.extension_dir / "a.jsonl"
    first_line = append(ext, 1)
    append(ext, 3)
    run(paths)
    data = ext.read_bytes()
    ext.write_bytes(data[: data.index(b"\n") + 1])  # same first line, shorter file
    assert run(paths) == first_line


def test_a_torn_tail_in_a_rotated_file_is_skipped_and_the_file_marked_consumed(paths):
    ids = append(paths.active_spool, 2)
    with open(paths.active_spool, "ab") as fh:
        fh.write(b'{"v":1,"event_id":"torn')
    rotated = rotate_spool(paths.spool_dir)
    config = load_config(paths.config_file, env={})
    reader = NewEventsReader(paths, config, CheckpointStore.load(paths.checkpoints_file))
    assert [r.event_id for r in reader.records()] == ids
    reader.commit()
    assert reader.stats.skipped_lines == 1
    entry = CheckpointStore.load(paths.checkpoints_file).find_by_path(rotated)
    assert entry.consumed_ns is not None and entry.offset == rotated.stat().st_size


def test_undecodable_lines_are_skipped_counted_and_not_read_again(paths):
    paths.spool_dir.mkdir(parents=True)
    ids = append(paths.active_spool, 1)
    with open(paths.active_spool, "ab") as fh:
        fh.write(b"garbage\n")
    ids += append(paths.active_spool, 1)
    config = load_config(paths.config_file, env={})
    reader = NewEventsReader(paths, config, CheckpointStore.load(paths.checkpoints_file))
    assert [r.event_id for r in reader.records()] == ids
    reader.commit()
    assert reader.stats.skipped_lines == 1 and run(paths) == []


def test_offsets_are_not_saved_until_commit(paths):
    ids = append(paths.active_spool, 2)
    config = load_config(paths.config_file, env={})
    reader = NewEventsReader(paths, config, CheckpointStore.load(paths.checkpoints_file))
    assert len(list(reader.records())) == 2  # read, but the packages were never made durable
    assert run(paths) == ids


@pytest.mark.parametrize("n", [1, 3000])
def test_two_names_of_one_inode_are_read_once(paths, n):
    ids = append(paths.extension_dir / "a.jsonl", n)
    os.link(paths.extension_dir / "a.jsonl", paths.extension_dir / "b.jsonl")
    assert run(paths) == ids


def test_an_extension_segment_sealed_between_runs_is_read_on_from_its_offset_and_marked_consumed(paths):
    segment = paths.extension_dir / "ext-20261201T000000000-4242-0000000a.jsonl"
    first = append(segment, 3)
    assert run(paths) == first
    entry = CheckpointStore.load(paths.checkpoints_file).find_by_path(segment)
    assert entry.consumed_ns is None  # still written by its writer
    second = append(segment, 2)
    sealed = segment.with_name(segment.name.replace(".jsonl", ".sealed.jsonl"))
    segment.rename(sealed)  # what client/vscode/lib/event_writer.js does when it finishes a segment
    assert run(paths) == second
    entry = CheckpointStore.load(paths.checkpoints_file).find_by_path(sealed)
    assert entry.consumed_ns is not None and entry.offset == sealed.stat().st_size
    assert run(paths) == []


def test_a_torn_tail_is_final_only_in_a_sealed_extension_file(paths):
    active = paths.extension_dir / "ext-20261201T000000000-4242-0000000b.jsonl"
    ids = append(active, 2)
    with open(active, "ab") as fh:
        fh.write(b'{"v":1,"event_id":"torn')
    assert run(paths) == ids
    entry = CheckpointStore.load(paths.checkpoints_file).find_by_path(active)
    assert entry.consumed_ns is None and entry.offset < active.stat().st_size  # may still be completed
    sealed = active.with_name(active.name.replace(".jsonl", ".sealed.jsonl"))
    active.rename(sealed)
    config = load_config(paths.config_file, env={})
    reader = NewEventsReader(paths, config, CheckpointStore.load(paths.checkpoints_file))
    assert list(reader.records()) == []
    reader.commit()
    assert reader.stats.skipped_lines == 1
    entry = CheckpointStore.load(paths.checkpoints_file).find_by_path(sealed)
    assert entry.consumed_ns is not None and entry.offset == sealed.stat().st_size
