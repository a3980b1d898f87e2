"""Building packages from records (DESIGN §6, §7): the exporter's core.

`build_packages` takes any iterable of EventRecords (the exporter's window,
or auto mode's records read from checkpoints). For each record, in one pass:
sanitize (`client.privacy.sanitize_event`), encode once (msgspec), aggregate
(`PartAggregates`), and stream the bytes to the current part's file
(`package_writer.PartWriter`). A part is closed — written as a complete
package — when the next event would take it over the cap; sizes are
accounted exactly (`PartAggregates.bound` + `package_writer.skeleton_size`),
so no file is ever over the cap and nothing is truncated. A window that fits
is written as exactly the output path; a larger one as `NAME.part001.json`, …
(NAME = the output path without `.json`), each with its own package_id and
aggregates. The redaction report goes next to it (`NAME.redactions.json`).

The optional compiled loop (`_export_fast.take_records`) does the same for
the records it can prove simple; tests prove both write identical packages.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import msgspec
import structlog

from ..client.errors import TelemetryError, UsageError
from ..client.event import EventRecord
from ..client.gc_pause import gc_paused
from ..client.privacy import RedactionReport, check_string, sanitize_event
from ..client.redaction import is_clean_record
from .aggregates import WIRE_TS_WIDTH, PartAggregates
from .package_writer import (
    PackageHeader,
    PartWriter,
    commit_temp,
    part_path,
    part_prefix,
    part_suffix,
    report_path,
    skeleton_size,
)
from .redaction_sidecar import RedactionSidecar
from .spool_reader import ReadStats, RecordBlocks

try:  # the optional compiled hot loop; the pure-Python loop below gives the same results
    from ._export_fast import take_records as _take_records
except ImportError:  # pragma: no cover - only without a C compiler at install time
    _take_records = None

log = structlog.get_logger(__name__)

PROGRESS_EVERY = 10_000
FLUSH_BYTES = 64 << 10  # encoded events are written to the part's file in pieces of about this size

ProgressFn = Callable[[int, "int | None"], None]


class EventTooLargeError(TelemetryError):
    code = "event_too_large"


class BuildResult(msgspec.Struct):
    written: list[tuple[str, str, str, int, int]]  # (path, sha256, package_id, events, bytes)
    events: int
    bytes: int
    redactions: dict[str, int]
    report_file: str


def build_packages(events: Iterable[EventRecord], *, header: PackageHeader, cap: int, output: Path,
                   stats: ReadStats | None = None, progress: ProgressFn | None = None) -> BuildResult:
    """Sanitize, aggregate and write `events` as one package at `output`, or as parts.

    Parts are written to temporary files and get their names together at the
    end, so a failed export leaves nothing behind and does not disturb the files
    of an earlier export to the same name.
    """
    builder = _PartBuilder(header, cap, output, stats or ReadStats())
    try:
        with gc_paused():
            builder.run(_blocks(events), progress)
        builder.commit()
    except BaseException:
        builder.discard()
        raise
    return BuildResult(written=builder.written, events=builder.total_events, bytes=builder.total_bytes,
                       redactions=dict(sorted(builder.redactions.items())),
                       report_file=str(builder.sidecar.path))




class _PartBuilder:
    def __init__(self, header: PackageHeader, cap: int, output: Path, stats: ReadStats) -> None:
        self.header, self.cap, self.output, self.stats = header, cap, output, stats
        self.skeleton = skeleton_size(header)
        if self.skeleton + 2 > cap:
            raise UsageError(f"telemetry.max_upload_size_mb is too small for any package ({cap} bytes)",
                             hint="raise it: `branchpy telemetry config set telemetry.max_upload_size_mb 5`")
        self.sidecar = RedactionSidecar(report_path(output))
        self.written: list[tuple[str, str, str, int, int]] = []
        self.temps: list[tuple[Path, Path]] = []  # (temporary file, final name) of parts written
        self.committed: list[Path] = []
        self.redactions: dict[str, int] = {}
        self.total_events = 0
        self.total_bytes = 0
        self.part = 1
        self.skipped_before = 0
        try:
            self._new_part()
        except BaseException:
            self.sidecar.discard()
            raise

    def _new_part(self) -> None:
        self.package_id = str(uuid.uuid4())
        self.prefix = part_prefix(self.header, self.package_id)
        self.writer = PartWriter(self.output)  # named when the export is complete (commit)
        self.writer.write(self.prefix)
        self.body = bytearray()  # the part's latest encoded events, comma-separated (see _flush)
        self.count = 0
        self.agg = PartAggregates()
        self.findings: list[tuple[str, str, str]] = []
        self.findings_omitted = 0

    def _append(self, data: bytes) -> None:
        """One encoded event onto the part (the compiled loop does the same itself)."""
        if self.count:
            self.body.append(44)  # ","
        self.body += data
        self.count += 1
        if len(self.body) >= FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        """Hand the encoded events gathered so far to the part's file."""
        self.writer.write(self.body)
        del self.body[:]

    def run(self, blocks: Iterable[list[EventRecord]], progress: ProgressFn | None) -> None:
        scratch = RedactionReport()
        encoder = msgspec.json.Encoder()
        encode, encode_into = encoder.encode, encoder.encode_into
        cap = self.cap
        limit = cap - self.skeleton  # room for events + aggregates in one part
        done, next_progress = 0, PROGRESS_EVERY
        body, agg = self.body, self.agg
        events_bytes = 0  # what the part's events take: each one's bytes + 1
        add, add_clean = agg.add, agg.add_clean
        is_clean = is_clean_record
        take_records = _take_records
        for block in blocks:
            i, n = 0, len(block)
            fast = take_records is not None and type(block) is list
            while i < n:
                if fast:  # compiled: what the branches below do, for the records it can prove simple
                    j, events_bytes = take_records(block, i, encode_into, body, agg, events_bytes, limit,
                                                   next_progress - done, self.count, self._add_findings,
                                                   FLUSH_BYTES)
                    if len(body) >= FLUSH_BYTES:
                        self._flush()
                    if j != i:
                        self.count += j - i
                        done += j - i
                        i = j
                        if done == next_progress:
                            next_progress += PROGRESS_EVERY
                            if progress is not None:
                                progress(done, None)
                        if i == n:
                            break
                rec = block[i]
                i += 1
                clean = is_clean(rec)
                if clean:  # its own encoding is the sanitized event's (see is_clean_record)
                    data = encode(rec)
                    need = len(data) + 1
                    if events_bytes + need * 7 + 4096 + agg.bound <= limit and agg.ts_width >= WIRE_TS_WIDTH:
                        self._append(data)  # the common case, as below without rules or findings
                        events_bytes += need
                        add_clean(rec)
                        done += 1
                        if done == next_progress:
                            next_progress += PROGRESS_EVERY
                            if progress is not None:
                                progress(done, None)
                        continue
                    ev, rules, etype = rec, None, None
                else:
                    ev = sanitize_event(rec, self.count, scratch)
                    rules = scratch.counts or None
                    etype = None
                    err = rec.error
                    if err is not None and err.type is not None and ev.error_hash is not None:
                        etype = err.type if check_string(err.type) is None else None
                    data = encode(ev)
                    need = len(data) + 1
                # Fast path: the aggregates grow by at most ~4x the event's own strings
                # plus constants, unless a wider timestamp re-reserves every reserved
                # one; only then, or near the cap, is the exact cost computed. (A
                # timestamp that needs JSON escapes is not a time: the reader drops
                # those; if one came from elsewhere, `_close_part` still refuses to
                # write an oversized file.)
                if (events_bytes + agg.bound + need * 7 + 4096 + (len(rules) * 64 if rules else 0) > limit
                        or len(ev.ts) + 2 > agg.ts_width):
                    if clean:  # the exact cost takes a SanitizedEvent (the same fields, no findings)
                        ev, clean = sanitize_event(rec, self.count, scratch), False
                    if events_bytes + agg.bound + need + agg.cost(ev, etype, rules) > limit:
                        index = self.count  # where the event's findings point; it moves to a new part
                        self._close_part(last=False)
                        if need + self.agg.cost(ev, etype, rules) > limit:
                            raise EventTooLargeError(
                                f"event {rec.event_id} alone ({len(data)} bytes sanitized) does not fit in a "
                                f"package of telemetry.max_upload_size_mb ({cap} bytes)",
                                hint="raise telemetry.max_upload_size_mb")
                        if rules:
                            _move_pointers(scratch, index, 0)
                        body, agg, events_bytes = self.body, self.agg, 0
                        add, add_clean = agg.add, agg.add_clean
                self._append(data)
                events_bytes += need
                if clean:
                    add_clean(ev)
                else:
                    add(ev, etype, rules)
                if rules:
                    self._take_findings(scratch)
                done += 1
                if done == next_progress:
                    next_progress += PROGRESS_EVERY
                    if progress is not None:
                        progress(done, None)
        self._close_part(last=True)
        if progress is not None:
            progress(done, done)

    def _take_findings(self, scratch: RedactionReport) -> None:
        self._add_findings([(f.pointer, f.rule, f.location) for f in scratch.findings], scratch.omitted)
        scratch.counts = {}
        scratch.findings = []
        scratch.omitted = 0

    def _add_findings(self, found: list[tuple[str, str, str]], omitted: int = 0) -> None:
        """One event's findings (pointer, rule, location), as many as the report keeps per file."""
        room = self.sidecar.max_findings_per_file - len(self.findings)
        kept = found[:max(room, 0)]
        self.findings.extend(kept)
        self.findings_omitted += len(found) - len(kept) + omitted

    def _close_part(self, *, last: bool) -> None:
        split = not (last and self.part == 1)
        path = part_path(self.output, self.part) if split else self.output
        skipped_total = self.stats.skipped_lines
        self._flush()
        self.writer.write(part_suffix(
            self.header, package_id=self.package_id, prefix=self.prefix, count=self.count, part=self.part,
            last_part=last, skipped=skipped_total - self.skipped_before, agg=self.agg))
        tmp, sha, size = self.writer.finish()
        self.temps.append((tmp, path))
        if size > self.cap:  # cannot happen: the accounting above is an upper bound
            raise TelemetryError(f"internal error: part {self.part} is {size} bytes, over {self.cap}")
        self.written.append((str(path), sha, self.package_id, self.count, size))
        self.sidecar.add_file(path.name, self.package_id, self.agg.redactions, self.findings,
                              self.findings_omitted)
        for rule, n in self.agg.redactions.items():
            self.redactions[rule] = self.redactions.get(rule, 0) + n
        self.total_events += self.count
        self.total_bytes += size
        self.skipped_before = skipped_total
        log.info("export.part_written", part=self.part, events=self.count, bytes=size)
        self.part += 1
        if not last:
            self._new_part()

    def commit(self) -> None:
        """Every part, then the redaction report, under its final name."""
        while self.temps:
            tmp, path = self.temps[0]
            commit_temp(tmp, path)
            self.temps.pop(0)
            self.committed.append(path)
        self.sidecar.finish()

    def discard(self) -> None:
        self.writer.discard()  # the part being written, if any
        for tmp, _ in self.temps:
            tmp.unlink(missing_ok=True)
        for path in self.committed:
            path.unlink(missing_ok=True)
        self.sidecar.discard()


def _move_pointers(report: RedactionReport, old_index: int, new_index: int) -> None:
    """The event moved to a new part: its findings point at its new index."""
    old, new = f"/summary/events/{old_index}", f"/summary/events/{new_index}"
    report.findings = [
        type(f)(new + f.pointer[len(old):], f.rule, f.location)
        if f.pointer == old or f.pointer.startswith(old + "/") else f
        for f in report.findings
    ]


def _blocks(events: Iterable[EventRecord]) -> Iterable[list[EventRecord]]:
    """The records as lists: RecordBlocks' own, else one list of everything
    streamed through a one-record window (an iterable may be a generator)."""
    if isinstance(events, RecordBlocks):
        return events.blocks
    return ([rec] for rec in events)
