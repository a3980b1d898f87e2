"""Read what is new in every source since its checkpoint.

Sources are the CLI spool (rotated files, then the active one) and the VS
Code extension's `*.jsonl` folder (written by a program that knows nothing of
our locks; its writer renames a file it finished to `*.sealed.jsonl`). Each
file is opened, identified (`checkpoints.identify`), and read from its
checkpoint to its last complete line; lines are decoded like the exporter
does (`spool_reader.decode_block`: bad lines skipped and counted).

- A half-written last line is not consumed: the offset stops before it, and
  the next run reads it once it is complete. Exception: a *rotated* spool
  file is final (the rotator holds the writers' lock while renaming), and so
  is a sealed extension file (its writer renames it after its last write): a
  torn tail there is skipped and counted, and the file is marked consumed.
- A rotated or renamed file keeps its identity: reading continues at its
  offset whatever its name now is, and two names of one inode are read once.
- A file listed but gone before it is opened (renamed by the extension in
  between) is skipped this run; its checkpoint waits `VANISHED_GRACE_S`.
- A file shorter than its checkpoint was truncated and rewritten in place:
  it is read again from 0 (the backend drops event ids it already has).
- Memory is bounded by one chunk and one line: a line longer than
  `spool_reader.MAX_LINE_BYTES` is dropped while it is read (skipped and
  counted once its newline arrives, the offset moving past it), never held.

The new offsets are applied to the store only by `commit()`, after the
caller has made the read events durable (packages in the outbox).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import structlog

from branchpy_telemetry.client.contracts.config import Config
from branchpy_telemetry.client.contracts.event import EventRecord
from branchpy_telemetry.client.contracts.paths import TelemetryPaths
from branchpy_telemetry.client.emitter.spool import ACTIVE_NAME, list_spool_files
from branchpy_telemetry.daemon.export import spool_reader
from branchpy_telemetry.daemon.export.checkpoints import CheckpointStore, FileIdentity, identify
from branchpy_telemetry.daemon.export.spool_reader import (
    SEALED_SUFFIX,
    ReadStats,
    decode_block,
    extension_dir,
    select_window,
)

log = structlog.get_logger("branchpy.sources")

EXTENSION_GLOB = "*.jsonl"


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: Path
    kind: str  # "spool" | "extension"
    final: bool  # a rotated spool file or a sealed extension file: never written again


@dataclass(slots=True)
class _Advance:
    identity: FileIdentity
    offset: int
    path: Path
    kind: str
    consumed: bool


def list_delivery_sources(paths: TelemetryPaths, config: Config) -> list[SourceFile]:
    """Spool files (rotated oldest first, then the active one), then the extension's files."""
    sources = [SourceFile(p, "spool", p.name != ACTIVE_NAME) for p in list_spool_files(paths.spool_dir)]
    ext_dir = extension_dir(paths, config)
    try:
        ext_files = sorted((p for p in ext_dir.glob(EXTENSION_GLOB) if p.is_file()), key=lambda p: p.name)
    except OSError:
        ext_files = []
    return sources + [SourceFile(p, "extension", p.name.endswith(SEALED_SUFFIX)) for p in ext_files]


class NewEventsReader:
    """One run's read of every source: iterate `records()`, then `commit()` the offsets."""

    def __init__(self, paths: TelemetryPaths, config: Config, store: CheckpointStore,
                 stats: ReadStats | None = None):
        self.paths, self.config, self.store = paths, config, store
        self.stats = stats or ReadStats()
        self.events = 0
        self._advances: dict[str, _Advance] = {}
        self._seen: set[str] = set()

    def records(self) -> Iterator[EventRecord]:
        """New records of every source, in source order, timestamps in the wire form."""
        for source, fh, identity in self._open_all():
            with fh:
                yield from select_window(self._read_one(source, fh, identity), None, None, self.stats)

    def commit(self, now: float | None = None) -> None:
        """Make the offsets of everything read so far durable."""
        now = time.time() if now is None else now
        for adv in self._advances.values():
            self.store.advance(adv.identity, adv.offset, path=adv.path, kind=adv.kind, seen=now,
                               consumed_ns=time.time_ns() if adv.consumed else None)
        for key in self._seen - set(self._advances):
            entry = self.store.entries.get(key)
            if entry is not None:
                entry.last_seen = now
        gone = self.store.forget_vanished(self._seen, now)
        if gone:
            log.info("sources.forgotten", count=len(gone))
        self.store.save()

    # -- internals ----------------------------------------------------------
    def _open_all(self) -> list[tuple[SourceFile, BinaryIO, FileIdentity]]:
        """Open every source before reading any, listing twice (a rotation in
        between neither loses the renamed file nor reads an inode twice)."""
        opened: list[tuple[SourceFile, BinaryIO, FileIdentity]] = []
        inodes: set[tuple[int, int]] = set()
        for _ in range(2):
            for source in list_delivery_sources(self.paths, self.config):
                try:
                    fh = open(source.path, "rb")  # noqa: SIM115 - closed by records()
                except (FileNotFoundError, IsADirectoryError):
                    continue  # renamed or removed meanwhile: found again under its new name
                except OSError as exc:
                    log.warning("sources.unreadable", path=str(source.path), error=exc.strerror)
                    continue
                st = os.fstat(fh.fileno())
                identity = identify(fh.fileno()) if (st.st_dev, st.st_ino) not in inodes else None
                if identity is None:  # already open under another name, or no complete line yet
                    fh.close()
                    continue
                inodes.add((st.st_dev, st.st_ino))
                self._seen.add(identity.key)
                opened.append((source, fh, identity))
        return opened

    def _read_one(self, source: SourceFile, fh: BinaryIO, identity: FileIdentity
                  ) -> Iterator[list[EventRecord]]:
        start = self.store.offset(identity)
        size = os.fstat(fh.fileno()).st_size
        if size < start:
            log.warning("sources.truncated", path=str(source.path), checkpoint=start, size=size)
            start = 0
        entry = self.store.get(identity)
        if start == size and (entry is None or entry.consumed_ns is not None or not source.final):
            return
        fh.seek(start)
        limit = spool_reader.MAX_LINE_BYTES
        size = min(spool_reader.CHUNK_BYTES, limit)  # so a line inside one chunk is within the limit
        pos = read_pos = start  # pos: the first byte not consumed yet (where `tail` or a skipped line starts)
        tail = b""  # an incomplete line, shorter than the limit
        skipping = False  # inside a line over the limit that starts at pos: dropped up to its newline
        while True:
            chunk = fh.read(size)
            if not chunk:
                break
            chunk_start, read_pos = read_pos, read_pos + len(chunk)
            if skipping:
                newline = chunk.find(b"\n")
                if newline < 0:
                    continue
                self._skip_overlong(source, chunk_start + newline + 1 - pos)
                pos, chunk, skipping = chunk_start + newline + 1, chunk[newline + 1:], False
            data = tail + chunk if tail else chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                skipping = len(data) >= limit
                tail = b"" if skipping else data
                continue
            block, rest = data[:cut + 1], data[cut + 1:]
            first = block.find(b"\n") + 1
            if tail and first > limit:  # the line begun in `tail` ended over the limit
                self._skip_overlong(source, first)
                block, pos = block[first:], pos + first
            if block:
                records = decode_block(block, self.stats)
                pos += len(block)
                self.events += len(records)
                yield records
                self._note(source, identity, pos, consumed=False)
            skipping = len(rest) >= limit
            tail = b"" if skipping else rest
        consumed = False
        if source.final:
            if skipping or tail.strip():
                self.stats.skipped_lines += 1  # a torn line in a file nobody writes any more
                log.info("sources.torn_tail_skipped", path=str(source.path), bytes=read_pos - pos)
            pos, consumed = read_pos, True
        self._note(source, identity, pos, consumed=consumed)

    def _skip_overlong(self, source: SourceFile, length: int) -> None:
        self.stats.skipped_lines += 1
        log.info("sources.overlong_line_skipped", path=str(source.path), bytes=length,
                 limit=spool_reader.MAX_LINE_BYTES)

    def _note(self, source: SourceFile, identity: FileIdentity, pos: int, *, consumed: bool) -> None:
        self._advances[identity.key] = _Advance(identity, pos, source.path, source.kind, consumed)
