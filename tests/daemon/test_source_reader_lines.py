"""The checkpointed source reader's line limit: a line longer than
`spool_reader.MAX_LINE_BYTES` is skipped and counted while it is read, never
held; the offset moves past it once its newline is there; a line nested past
the decoder's depth is skipped too. Small limits here; the 50 MB version
runs against a real daemon in tests/security/test_local_spool_lines.py."""

from __future__ import annotations

import pytest

from branchpy_telemetry.client.contracts.config import load_config
from branchpy_telemetry.client.contracts.event import EventRecord, event_encoder
from branchpy_telemetry.client.contracts.timewindow import format_ts, utcnow
from branchpy_telemetry.client.emitter.spool import rotate_spool
from branchpy_telemetry.client.emitter.stamping import new_event_id
from branchpy_telemetry.daemon.export import spool_reader
from branchpy_telemetry.daemon.export.checkpoints import CheckpointStore
from branchpy_telemetry.daemon.export.source_reader import NewEventsReader
from branchpy_telemetry.daemon.export.spool_reader import ReadStats

LIMIT = 400


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setattr(spool_reader, "MAX_LINE_BYTES", LIMIT)


def event_line(length: int | None = None) -> tuple[str, bytes]:
    """One valid event line (newline included), padded to exactly `length` bytes."""
    rec = EventRecord(event_id=new_event_id(), ts=format_ts(utcnow()), category="command", source="cli",
                      name="analyze", attrs={"pad": ""})
    raw = event_encoder.encode(rec) + b"\n"
    if length is not None:
        rec.attrs = {"pad": "p" * (length - len(raw))}
        raw = event_encoder.encode(rec) + b"\n"
        assert len(raw) == length
    return rec.event_id, raw


def run(paths) -> tuple[list[str], int]:
    reader = NewEventsReader(paths, load_config(paths.config_file, env={}),
                             CheckpointStore.load(paths.checkpoints_file), ReadStats())
    ids = [r.event_id for r in reader.records()]
    reader.commit()
    return ids, reader.stats.skipped_lines


def write(path, *chunks: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as fh:
        fh.write(b"".join(chunks))


@pytest.mark.parametrize("chunk", [7, 64, 399, 400, 401, 1 << 20])
def test_lines_up_to_the_limit_are_read_longer_ones_skipped_whatever_the_chunk(paths, small_limit,
                                                                               monkeypatch, chunk):
    monkeypatch.setattr(spool_reader, "CHUNK_BYTES", chunk)
    lengths = [200, LIMIT, LIMIT + 1, 250, 3 * LIMIT, LIMIT - 1, LIMIT + 2, 10 * LIMIT + 3, 180]
    kept = []
    for length in lengths:
        event_id, raw = event_line(length)
        write(paths.active_spool, raw)
        if length <= LIMIT:
            kept.append(event_id)
    assert run(paths) == (kept, 4)
    assert run(paths) == ([], 0)  # the offset moved past everything, skipped lines included


def test_an_overlong_line_still_being_written_waits_then_is_skipped_once(paths, small_limit):
    first, raw_first = event_line()
    _, overlong = event_line(5 * LIMIT)  # a valid event, only too long
    write(paths.active_spool, raw_first, overlong[:-10])
    assert run(paths) == ([first], 0)  # no newline yet: not counted, not consumed
    assert run(paths) == ([], 0)
    second, raw_second = event_line()
    write(paths.active_spool, overlong[-10:], raw_second)
    assert run(paths) == ([second], 1)
    assert run(paths) == ([], 0)


def test_a_rotated_file_ending_in_an_overlong_torn_line_is_consumed(paths, small_limit):
    first, raw_first = event_line()
    _, overlong = event_line(3 * LIMIT)
    write(paths.active_spool, raw_first, overlong[:-1])
    rotate_spool(paths.spool_dir)
    assert run(paths) == ([first], 1)
    assert run(paths) == ([], 0)


def test_an_extension_file_is_bounded_the_same_way(paths, small_limit):
    first, raw_first = event_line()
    last, raw_last = event_line()
    write(paths.extension_dir / "a.jsonl", raw_first, event_line(4 * LIMIT)[1], raw_last)
    assert run(paths) == ([first, last], 1)


def test_a_line_nested_past_the_decoders_depth_is_skipped_and_counted(paths):
    first, raw_first = event_line()
    last, raw_last = event_line()
    deep = (b'{"v":1,"event_id":"e","ts":"2026-01-01T00:00:00.000Z","category":"command","source":"cli",'
            b'"name":"n","attrs":{"a":' + b"[" * 50_000 + b"]" * 50_000 + b"}}\n")
    write(paths.active_spool, raw_first, deep, raw_last)
    assert run(paths) == ([first, last], 1)
