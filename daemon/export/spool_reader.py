"""Stream EventRecords out of the JSONL sources of an export.

Sources: the CLI spool (rotated files oldest first, then the active file) and
the VS Code extension's folder (`*.jsonl`, written by another program).
Reading is streaming: one buffer read into again and again, cut at the last
newline, decoded with `Decoder.decode_lines` (one call per buffer), falling
back to line-by-line decoding only for a buffer that holds a bad line. Lines that fail to decode or
validate — and a last line without its newline — are skipped and counted in
`ReadStats.skipped_lines`, never fatal. Memory is bounded by the buffer
(CHUNK_BYTES, up to MAX_LINE_BYTES for one long line), not by the spool size.

Every file is opened before any is read, then the spool is listed again: a
rotation in between (active file renamed, a new one created) neither loses
the renamed file (its descriptor is open) nor reads it twice (same inode).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import BinaryIO

import msgspec
import structlog

from branchpy_telemetry.client.contracts.config import Config
from branchpy_telemetry.client.contracts.event import EventRecord
from branchpy_telemetry.client.contracts.limits import MAX_SPOOL_LINE_BYTES
from branchpy_telemetry.client.contracts.paths import TelemetryPaths
from branchpy_telemetry.client.contracts.timewindow import format_ts
from branchpy_telemetry.client.emitter.spool import list_spool_files

log = structlog.get_logger(__name__)

CHUNK_BYTES = 1 << 20
# A longer line (newline included) is skipped and counted, never held whole.
MAX_LINE_BYTES = MAX_SPOOL_LINE_BYTES
EXTENSION_GLOB = "*.jsonl"
# An extension file its writer finished (client/vscode/lib/event_writer.js): never written again.
SEALED_SUFFIX = ".sealed.jsonl"
# The wire form of a timestamp (client.contracts.timewindow.format_ts): fixed width, so
# such timestamps compare correctly as strings. Checked by mapping every ASCII
# digit to 0 and comparing with the shape (cheaper than a regex, per event).
_DIGITS_TO_ZERO = bytes.maketrans(b"0123456789", b"0000000000")
_CANONICAL_SHAPE = b"0000-00-00T00:00:00.000Z"

_decoder = msgspec.json.Decoder(EventRecord)


@dataclass
class ReadStats:
    files: int = 0
    bytes: int = 0
    skipped_lines: int = 0  # undecodable, invalid or partial lines
    skipped_by_file: dict[str, int] = field(default_factory=dict)


def extension_dir(paths: TelemetryPaths, config: Config) -> Path:
    configured = config.telemetry.sources.extension_dir
    return Path(configured).expanduser() if configured else paths.extension_dir


def sealed_extension_files(ext_dir: Path) -> list[Path]:
    """The extension's sealed files (final, like a rotated spool file), by name."""
    try:
        return sorted(p for p in ext_dir.glob("*" + SEALED_SUFFIX) if p.is_file())
    except OSError:
        return []


def list_sources(paths: TelemetryPaths, config: Config) -> tuple[list[Path], list[Path]]:
    """(spool files: rotated oldest first, then active; the extension's `*.jsonl` by name)."""
    ext_dir = extension_dir(paths, config)
    try:
        ext_files = [p for p in ext_dir.glob(EXTENSION_GLOB) if p.is_file()]
    except OSError:
        ext_files = []
    return list_spool_files(paths.spool_dir), sorted(ext_files, key=lambda p: p.name)


@dataclass
class Sources:
    """The files of one export, in reading order. Spool files are opened up front
    (rotation, see the module docstring); extension files, which can be many and
    follow no rotation protocol of ours, are opened one at a time while reading.
    A file reached twice (same inode) is read once."""

    items: list[tuple[Path, BinaryIO | None]] = field(default_factory=list)
    seen: set[tuple[int, int]] = field(default_factory=set)

    def open(self, path: Path) -> BinaryIO | None:
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by read_blocks or close()
        except (FileNotFoundError, IsADirectoryError):
            return None  # rotated away or removed by retention meanwhile
        except OSError as exc:
            log.warning("export.source_unreadable", path=str(path), error=exc.strerror)
            return None
        st = os.fstat(fh.fileno())
        if (st.st_dev, st.st_ino) in self.seen:
            fh.close()
            return None
        self.seen.add((st.st_dev, st.st_ino))
        return fh

    def close(self) -> None:
        for _, fh in self.items:
            if fh is not None:
                fh.close()


def open_sources(paths: TelemetryPaths, config: Config) -> Sources:
    sources = Sources()
    for _ in range(2):
        spool_files, _ = list_sources(paths, config)
        for path in spool_files:
            fh = sources.open(path)
            if fh is not None:
                sources.items.append((path, fh))
    _, ext_files = list_sources(paths, config)
    sources.items += [(path, None) for path in ext_files]
    return sources


def read_records(sources: Sources, stats: ReadStats) -> Iterator[EventRecord]:
    """Every decodable record of every source, in order; closes each file."""
    for block in read_blocks(sources, stats):
        yield from block


def read_blocks(sources: Sources, stats: ReadStats) -> Iterator[list[EventRecord]]:
    """The decodable records of every source, one list per chunk; closes each file."""
    for path, fh in sources.items:
        if fh is None:
            fh = sources.open(path)
            if fh is None:
                continue
        with fh:
            stats.files += 1
            before = stats.skipped_lines
            yield from _read_file(fh, stats)
            if stats.skipped_lines != before:
                stats.skipped_by_file[str(path)] = stats.skipped_lines - before
                log.info("export.lines_skipped", path=str(path), count=stats.skipped_lines - before)


def _read_file(fh: BinaryIO, stats: ReadStats) -> Iterator[list[EventRecord]]:
    """The file's complete lines, decoded a buffer at a time. One buffer is
    read into again and again (no new 1 MB object per chunk); an incomplete
    last line moves to its front. A line longer than the buffer grows it, up
    to MAX_LINE_BYTES: a line that does not fit with its newline is skipped
    (counted) up to its newline."""
    buf = bytearray(CHUNK_BYTES)
    view = memoryview(buf)
    held = 0  # bytes of an incomplete line at the front of buf
    oversized = False  # inside a line longer than MAX_LINE_BYTES: drop until its newline
    try:
        while True:
            if held == len(buf):  # one line fills the buffer
                if len(buf) >= MAX_LINE_BYTES:
                    oversized, held = True, 0
                else:
                    view.release()
                    buf.extend(bytes(min(len(buf), MAX_LINE_BYTES - len(buf))))
                    view = memoryview(buf)
            n = fh.readinto(view[held:])
            if not n:
                break
            stats.bytes += n
            end, start = held + n, 0
            if oversized:
                first = buf.find(b"\n", 0, end)
                if first < 0:
                    held = 0
                    continue
                stats.skipped_lines += 1
                oversized, start = False, first + 1
            cut = buf.rfind(b"\n", start, end)
            if cut < 0:
                held = end - start
                buf[:held] = buf[start:end]
                continue
            if cut > start:
                block = view[start:cut + 1]
                try:
                    records = decode_block(block, stats)
                finally:
                    block.release()
                yield records
            held = end - cut - 1
            buf[:held] = buf[cut + 1:end]
    finally:
        view.release()
    if oversized or buf[:held].strip():
        stats.skipped_lines += 1  # a partial last line (being written, or torn)


def decode_block(block: bytes | memoryview, stats: ReadStats) -> list[EventRecord]:
    """Decode complete lines; on a bad line, decode one by one and count the bad ones."""
    try:
        return _decoder.decode_lines(block)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        pass
    out = []
    for line in bytes(block).split(b"\n"):
        if not line.strip():
            continue
        try:
            out.append(_decoder.decode(line))
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):  # or nested too deep
            stats.skipped_lines += 1
    return out


def ceil_ms(value: datetime) -> datetime:
    """Round up to the millisecond grid timestamps live on."""
    value = value.astimezone(UTC)
    extra = value.microsecond % 1000
    return value if extra == 0 else value.replace(microsecond=value.microsecond - extra) + _MS


class RecordBlocks:
    """Records in lists as they were read (one per chunk); iterating yields the
    records one by one, `blocks` the lists (the exporter works a list at a time)."""

    def __init__(self, blocks: Iterable[list[EventRecord]]) -> None:
        self.blocks = blocks

    def __iter__(self) -> Iterator[EventRecord]:
        for block in self.blocks:
            yield from block


def select_window(blocks: Iterable[list[EventRecord]], start: datetime | None, end: datetime | None,
                  stats: ReadStats) -> Iterator[EventRecord]:
    """Records with `start <= ts < end`, from lists of records; timestamps in the wire form.

    A record whose `ts` is not a time is skipped and counted (it fails to validate).
    """
    for block in select_blocks(blocks, start, end, stats):
        yield from block


_get_ts = attrgetter("ts")


def select_blocks(blocks: Iterable[list[EventRecord]], start: datetime | None, end: datetime | None,
                  stats: ReadStats) -> Iterator[list[EventRecord]]:
    """`select_window`, a list at a time (empty lists are not yielded).

    Wire-form timestamps are compared as strings (no parsing): on the millisecond
    grid `ts >= start` iff `ts >= ceil_ms(start)`, and `ts < end` iff `ts < ceil_ms(end)`.
    A block whose timestamps are all in the wire form (one C-level check over
    them joined) and all inside the window (min and max) passes whole.
    """
    lo = format_ts(ceil_ms(start)) if start is not None else ""
    hi = format_ts(ceil_ms(end)) if end is not None else "\uffff"
    table, shape = _DIGITS_TO_ZERO, _CANONICAL_SHAPE
    for block in blocks:
        n = len(block)
        if not n:
            continue
        tss = list(map(_get_ts, block))
        joined = "".join(tss)
        if not (len(joined) == 24 * n and min(map(len, tss)) == 24 and joined.isascii()
                and joined.encode().translate(table) == shape * n):
            block = _normalized(block, stats)
            tss = list(map(_get_ts, block))
            if not block:
                continue
        if not (lo <= min(tss) and max(tss) < hi):
            block = [rec for rec, ts in zip(block, tss, strict=True) if lo <= ts < hi]
        if block:
            yield block


def _normalized(block: list[EventRecord], stats: ReadStats) -> list[EventRecord]:
    """The records whose `ts` is a time, each in the wire form; the others counted as skipped."""
    table, shape = _DIGITS_TO_ZERO, _CANONICAL_SHAPE
    out = []
    for rec in block:
        ts = rec.ts
        if not (ts.isascii() and ts.encode().translate(table) == shape):
            fixed = normalize_ts(ts)
            if fixed is None:
                stats.skipped_lines += 1
                continue
            rec.ts = fixed
        out.append(rec)
    return out


def normalize_ts(text: str) -> str | None:
    """An ISO-8601 time in any form -> the wire form; None if it is not a time."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (ValueError, TypeError):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return format_ts(value)
    except (ValueError, OverflowError):
        return None


_MS = datetime.resolution * 1000
