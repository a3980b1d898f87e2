"""Building packages from records: the exporter's core.

`build_packages` takes any iterable of EventRecords (the exporter's window,
or auto mode's records read from checkpoints). For each record, in one pass:
apply the catalog and the privacy rules (`client.contracts.declared.sanitize_event`;
an undeclared event is dropped whole and counted), encode once (msgspec), aggregate
(`PartAggregates`), and stream the bytes to the current part's file
(`package_writer.PartWriter`). A part is closed — written as a complete
package — when the next event would take it over the cap; sizes are
accounted exactly (`PartAggregates.bound` + `package_writer.skeleton_size`),
so no file is ever over the cap and nothing is truncated. A window that fits
is written as exactly the output path; a larger one as `NAME.part001.json`, …
(NAME = the output path without `.json`), each with its own package_id and
aggregates. The redaction report goes next to it (`NAME.redactions.json`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import msgspec
import structlog

from branchpy_telemetry.client.contracts.declared import ExportPolicy, is_clean_record, sanitize_event
from branchpy_telemetry.client.contracts.errors import EventTooLargeError, TelemetryError, UsageError
from branchpy_telemetry.client.contracts.event import EventRecord
from branchpy_telemetry.client.contracts.fixed_formats import public_error_type
from branchpy_telemetry.client.contracts.redaction import RedactionReport
from branchpy_telemetry.client.contracts.schema import SanitizedEvent
from branchpy_telemetry.client.infra.gc_pause import gc_paused
from branchpy_telemetry.daemon.export.aggregates import CleanBatch, PartAggregates
from branchpy_telemetry.daemon.export.block_proof import dirty_positions
from branchpy_telemetry.daemon.export.package_writer import (
    PackageHeader,
    PartWriter,
    part_path,
    part_prefix,
    part_suffix,
    report_path,
    skeleton_size,
)
from branchpy_telemetry.daemon.export.redaction_sidecar import RedactionSidecar
from branchpy_telemetry.daemon.export.spool_reader import ReadStats, RecordBlocks

log = structlog.get_logger(__name__)

PROGRESS_EVERY = 10_000
BULK_MIN = 32  # below this many records, a block that does not fit is taken one by one
FLUSH_BYTES = 64 << 10  # encoded events are written to the part's file in pieces of about this size

ProgressFn = Callable[[int, "int | None"], None]


class BuildResult(msgspec.Struct):
    written: list[tuple[str, str, str, int, int]]  # (path, sha256, package_id, events, bytes)
    events: int
    bytes: int
    redactions: dict[str, int]
    report_file: str


def build_packages(events: Iterable[EventRecord], *, header: PackageHeader, cap: int, output: Path,
                   policy: ExportPolicy, stats: ReadStats | None = None,
                   progress: ProgressFn | None = None) -> BuildResult:
    """Sanitize, aggregate and write `events` as one package at `output`, or as parts.

    Parts are written to temporary files and get their names together at the
    end, so a failed export leaves nothing behind and does not disturb the files
    of an earlier export to the same name.
    """
    builder = _PartBuilder(header, cap, output, stats or ReadStats(), policy)
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
    def __init__(self, header: PackageHeader, cap: int, output: Path, stats: ReadStats,
                 policy: ExportPolicy) -> None:
        self.header, self.cap, self.output, self.stats, self.policy = header, cap, output, stats, policy
        self.skeleton = skeleton_size(header)
        if self.skeleton + 2 > cap:
            raise UsageError(f"telemetry.max_upload_size_mb is too small for any package ({cap} bytes)",
                             hint="raise it: `branchpy telemetry config set telemetry.max_upload_size_mb 5`")
        self.limit = cap - self.skeleton  # room for events + aggregates in one part
        # bytes per event seen so far (a block that clearly will not fit is halved without trying)
        self.mean_event_bytes = 0.0
        self.seen_events = self.seen_bytes = 0
        self.scratch = RedactionReport()
        self.encode = msgspec.json.Encoder().encode
        self.sidecar = RedactionSidecar(report_path(output))
        self.written: list[tuple[str, str, str, int, int]] = []
        self.finished: list[tuple[PartWriter, Path]] = []  # parts written, not yet named (final name)
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
        self.events_bytes = 0  # what the part's events take: each one's bytes + 1
        self.agg = PartAggregates()
        self.findings: list[tuple[str, str, str]] = []
        self.findings_omitted = 0

    def _append(self, data: bytes) -> None:
        """One encoded event onto the part."""
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
        done, next_progress = 0, PROGRESS_EVERY
        for block in blocks:
            self._take(block)
            done += len(block)
            if progress is not None and done >= next_progress:
                next_progress = (done // PROGRESS_EVERY + 1) * PROGRESS_EVERY
                progress(done, None)
        self._close_part(last=True)
        if progress is not None:
            progress(done, done)

    def _take(self, block: list[EventRecord]) -> None:
        """A block in bulk; where it does not fit, its halves, down to a few records taken one by one."""
        if (len(block) <= BULK_MIN or self.events_bytes + self.agg.bound + len(block) * self.mean_event_bytes
                < self.limit) and self._take_block(block):
            return
        if len(block) <= BULK_MIN:
            self._take_one_by_one(block)
            return
        half = len(block) // 2
        self._take(block[:half])
        self._take(block[half:])

    def _take_block(self, block: list[EventRecord]) -> bool:
        """The whole block at once when it fits in the current part: clean records as they
        are, the others sanitized (or dropped), encoded in one call, aggregated in bulk.
        False (and nothing changed) when it would not fit: the caller goes record by record."""
        policy, scratch, agg = self.policy, self.scratch, self.agg
        out = list(block)
        dirty: list[tuple] = []  # (event, error type, rules, findings, findings omitted)
        dropped: dict[str, int] = {}
        gone: list[int] = []  # positions of records dropped whole
        for i in dirty_positions(block, policy):
            rec = block[i]
            ev = sanitize_event(rec, self.count + i - len(gone), scratch, policy)
            rules = scratch.counts or None
            if ev is None:
                gone.append(i)
                for rule, k in (rules or {}).items():
                    dropped[rule] = dropped.get(rule, 0) + k
            else:
                dirty.append((ev, self._error_type(rec, ev), rules,
                              [(f.pointer, f.rule, f.location) for f in scratch.findings], scratch.omitted))
                out[i] = ev
            scratch.counts, scratch.findings, scratch.omitted = {}, [], 0
        for i in reversed(gone):
            del out[i]
        data = self.encode(out) if out else b"[]"
        batch = CleanBatch(out)
        growth = agg.growth_clean_many(batch) + agg.redactions_cost(dropped) + sum(
            agg.rest_bound(ev, etype, rules) for ev, etype, rules, _, _ in dirty)
        added = len(data) - 1 if out else 0  # each event's bytes + 1 (the brackets make up the commas)
        if self.events_bytes + added + agg.bound + growth > self.limit:
            return False
        if out:
            self._flush()
            if self.count:
                self.writer.write(b",")
            self.writer.write(memoryview(data)[1:-1])
            self.count += len(out)
            self.events_bytes += added
            self.seen_events += len(out)
            self.seen_bytes += added
            self.mean_event_bytes = self.seen_bytes / self.seen_events
            agg.add_clean_many(batch)
        for ev, etype, rules, found, omitted in dirty:
            agg.add_rest(ev, etype, rules)
            if found or omitted:
                self._add_findings(found, omitted)
        if dropped:
            agg.add_redactions(dropped)
        return True

    def _error_type(self, rec: EventRecord, ev: SanitizedEvent) -> str | None:
        err = rec.error
        if err is None or ev.error_hash is None:
            return None
        return public_error_type(err.type, self.policy.catalog.type_modules)

    def _take_one_by_one(self, block: list[EventRecord]) -> None:
        """Record by record, closing the part (and opening the next) exactly where the cap falls."""
        policy, scratch, encode, limit = self.policy, self.scratch, self.encode, self.limit
        for rec in block:
            agg = self.agg
            ev = rec if is_clean_record(rec, policy) else sanitize_event(rec, self.count, scratch, policy)
            rules = scratch.counts or None
            if ev is None:  # dropped whole: only its counts go into the part
                if rules:
                    if self.events_bytes + agg.bound + agg.redactions_cost(rules) > limit:
                        self._close_part(last=False)
                    self.agg.add_redactions(rules)
                    self._take_findings(scratch)
                continue
            if ev is rec:  # the exact cost takes a SanitizedEvent (the same fields, no findings)
                ev = sanitize_event(rec, self.count, scratch, policy)
            etype = self._error_type(rec, ev)
            data = encode(ev)
            need = len(data) + 1
            if self.events_bytes + agg.bound + need + agg.cost(ev, etype, rules) > limit:
                index = self.count  # where the event's findings point; it moves to a new part
                self._close_part(last=False)
                if need + self.agg.cost(ev, etype, rules) > limit:
                    raise EventTooLargeError(
                        f"event {rec.event_id} alone ({len(data)} bytes sanitized) does not fit in a "
                        f"package of telemetry.max_upload_size_mb ({self.cap} bytes)",
                        hint="raise telemetry.max_upload_size_mb")
                if rules:
                    _move_pointers(scratch, index, 0)
            self._append(data)
            self.events_bytes += need
            self.agg.add(ev, etype, rules)
            if rules:
                self._take_findings(scratch)

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
        sha, size = self.writer.finish()
        self.finished.append((self.writer, path))
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
        while self.finished:
            writer, path = self.finished[0]
            writer.commit(path)
            self.finished.pop(0)
            self.committed.append(path)
        self.sidecar.finish()

    def discard(self) -> None:
        self.writer.discard()  # the part being written, if any
        for writer, _ in self.finished:
            writer.discard()
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
