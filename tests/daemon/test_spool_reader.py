"""The spool reader's buffer handling against a plain reference: every
complete line decoded or counted, whatever the buffer size, line lengths,
bad lines, over-long lines and a partial last line (hypothesis)."""

from __future__ import annotations

import io

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from branchpy_telemetry.client.contracts.event import EventRecord
from branchpy_telemetry.daemon.export import spool_reader
from branchpy_telemetry.daemon.export.spool_reader import ReadStats

_decoder = msgspec.json.Decoder(EventRecord)


def _line(i: int, pad: int) -> bytes:
    record = EventRecord(event_id=f"e{i}", ts="2026-11-28T01:02:03.456Z", category="command", source="cli",
                         name="n", attrs={"pad": "x" * pad})
    return msgspec.json.encode(record)


LINES = st.one_of(
    st.builds(_line, st.integers(0, 10**6), st.integers(0, 40)),  # ~150 bytes
    st.builds(_line, st.integers(0, 10**6), st.integers(100, 400)),  # around the limits below
    st.sampled_from([b"", b"   ", b"{not json", b'{"v":1,"event_id":"x"}', b"\xff\xfe", b"[]"]),
)


def reference(data: bytes, max_line: int) -> tuple[list[str], int]:
    """What the reader must return: (event ids, skipped lines)."""
    *complete, tail = data.split(b"\n")
    ids, skipped = [], 0
    for line in complete:
        if len(line) + 1 > max_line:
            skipped += 1
        elif line.strip():
            try:
                ids.append(_decoder.decode(line).event_id)
            except (msgspec.DecodeError, msgspec.ValidationError):
                skipped += 1
    if tail.strip() or len(tail) >= max_line:
        skipped += 1
    return ids, skipped


@settings(max_examples=300, deadline=None, database=None)
@given(lines=st.lists(LINES, max_size=30), tail=st.sampled_from([b"", b'{"v": 1, "event_id": "part', b"  "]),
       chunk=st.sampled_from([7, 64, 256, 1000, 1 << 20]), max_line=st.sampled_from([256, 300, 4096]))
def test_the_reader_returns_every_complete_line_or_counts_it(lines, tail, chunk, max_line):
    data = b"".join(line + b"\n" for line in lines) + tail
    saved = spool_reader.CHUNK_BYTES, spool_reader.MAX_LINE_BYTES
    spool_reader.CHUNK_BYTES, spool_reader.MAX_LINE_BYTES = min(chunk, max_line), max_line
    try:
        stats = ReadStats()
        ids = [r.event_id for block in spool_reader._read_file(io.BytesIO(data), stats) for r in block]
    finally:
        spool_reader.CHUNK_BYTES, spool_reader.MAX_LINE_BYTES = saved
    assert (ids, stats.skipped_lines) == reference(data, max_line)
    assert stats.bytes == len(data)


def test_a_line_exactly_at_the_limit_is_read_and_one_byte_longer_is_skipped():
    line = _line(1, 200)
    for max_line, expected in ((len(line) + 1, (["e1"], 0)), (len(line), ([], 1))):
        saved = spool_reader.CHUNK_BYTES, spool_reader.MAX_LINE_BYTES
        spool_reader.CHUNK_BYTES, spool_reader.MAX_LINE_BYTES = 16, max_line
        try:
            stats = ReadStats()
            data = line + b"\n"
            ids = [r.event_id for block in spool_reader._read_file(io.BytesIO(data), stats) for r in block]
        finally:
            spool_reader.CHUNK_BYTES, spool_reader.MAX_LINE_BYTES = saved
        assert (ids, stats.skipped_lines) == expected
