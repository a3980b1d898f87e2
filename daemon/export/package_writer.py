"""Assemble one package part's bytes and write files atomically.

The events of a part arrive already encoded (each sanitized event is encoded
exactly once) and are streamed to the part's file as they come: what
precedes them in a package (`part_prefix`) depends on neither them nor the
aggregates, and what follows them (`part_suffix`) is written when the part
closes. So a part is never held in memory, and is hashed as it is written.
`skeleton_size` is the exact size of a package with no events and empty
aggregates, every number at its widest: with `PartAggregates.bound` it gives
an upper bound on a part's size.

Files are written to a temporary name (`PartWriter`, an `AtomicFile`) and renamed (mode
0600); the exporter records each written package, with its sha256, in
`exports.jsonl` (`package_records`) so `upload` can refuse a file changed since export.
"""

from __future__ import annotations

import hashlib
import platform
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import msgspec

from branchpy_telemetry.client.contracts.errors import StorageError
from branchpy_telemetry.client.contracts.fixed_formats import (
    ARCH_REGEX,
    OS_REGEX,
    is_version,
    os_release_numbers,
)
from branchpy_telemetry.client.contracts.schema import (
    SCHEMA_VERSION,
    CatalogRef,
    Platform,
    Summary,
    TelemetryPackage,
    UsageStatistics,
)
from branchpy_telemetry.client.contracts.timewindow import format_ts, utcnow
from branchpy_telemetry.client.contracts.version import DISTRIBUTION, installed_version
from branchpy_telemetry.client.infra.atomic_write import AtomicFile
from branchpy_telemetry.daemon.export.aggregates import WIDE_INT, PartAggregates
from branchpy_telemetry.daemon.export.package_records import find_export_record

_PART_SUFFIX = re.compile(r"\.part\d{3,}$")
_enc = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class PackageHeader:
    """What every part of one export shares."""

    export_timestamp: str
    branchpy_version: str
    platform: Platform
    governance_id: str
    window_from: str | None
    window_to: str | None
    catalog: CatalogRef | None = None


def make_header(governance_id: str, window_from: str | None, window_to: str | None,
                catalog: CatalogRef | None = None) -> PackageHeader:
    return PackageHeader(
        export_timestamp=format_ts(utcnow()), branchpy_version=branchpy_version(),
        platform=platform_info(), governance_id=governance_id,
        window_from=window_from, window_to=window_to, catalog=catalog)


def platform_info() -> Platform:
    """OS family, release numbers, CPU architecture and Python version — nothing that
    identifies the machine or the person (no hostname, no user name, no kernel's local tail)."""
    os_name, arch = platform.system().lower(), platform.machine().lower()
    return Platform(os=os_name if re.fullmatch(OS_REGEX, os_name) else "unknown",
                    os_release=os_release_numbers(platform.release()),
                    arch=arch if re.fullmatch(ARCH_REGEX, arch) else "unknown",
                    python=version_numbers(platform.python_version()))


def branchpy_version() -> str:
    """BranchPy's version when installed, else this telemetry package's."""
    found = installed_version("branchpy") or installed_version(DISTRIBUTION)
    return version_numbers(found) if found is not None else "0"


def version_numbers(text: str) -> str:
    """A version as it is when version-shaped, else its leading numbers (`0.1.dev3+gabc` -> `0.1`)."""
    if is_version(text):
        return text
    return os_release_numbers(text) or "0"


def skeleton_size(header: PackageHeader) -> int:
    """Exact bytes of a part with no events and empty aggregates, numbers at their widest."""
    return len(_encode(header, package_id=str(uuid.uuid4()), events=b"[]", count=WIDE_INT,
                       part=WIDE_INT, last_part=False, skipped=WIDE_INT, agg=PartAggregates(),
                       empty=True))


# Where a part's events go. It cannot occur anywhere else in a package: JSON
# strings escape control characters, so no encoded value holds a NUL byte.
_EVENTS_MARK = b"\x00events\x00"


def part_prefix(header: PackageHeader, package_id: str) -> bytes:
    """A part's bytes up to its first event (`..."summary":{"events":[`): what
    precedes the events depends on neither them nor the aggregates."""
    return _around_events(header, package_id=package_id, count=0, part=1, last_part=False, skipped=0,
                          agg=PartAggregates(), empty=True)[0]


def part_suffix(header: PackageHeader, *, package_id: str, prefix: bytes, count: int, part: int,
                last_part: bool, skipped: int, agg: PartAggregates) -> bytes:
    """A part's bytes after its last event (`]`, the rest of the summary, the
    aggregates), for a part begun with `prefix`."""
    before, after = _around_events(header, package_id=package_id, count=count, part=part,
                                   last_part=last_part, skipped=skipped, agg=agg, empty=False)
    if before != prefix:  # cannot happen: see part_prefix
        raise ValueError("a part's beginning changed while it was written")
    return after


def _around_events(header: PackageHeader, **fields) -> tuple[bytes, bytes]:
    around = _encode(header, events=_EVENTS_MARK, **fields)
    before, mark, after = around.partition(_EVENTS_MARK)
    if not mark:  # cannot happen: the marker is encoded as it is (msgspec.Raw)
        raise ValueError("encoded part lacks its events marker")
    return before + b"[", b"]" + after


def _encode(header: PackageHeader, *, package_id: str, events: bytes, count: int, part: int,
            last_part: bool, skipped: int, agg: PartAggregates, empty: bool) -> bytes:
    summary = Summary(
        events=msgspec.Raw(events),  # type: ignore[arg-type]  # pre-encoded SanitizedEvents
        event_count=count, window_from=header.window_from, window_to=header.window_to,
        first_event_ts=None if empty else agg.first_ts, last_event_ts=None if empty else agg.last_ts,
        part=part, last_part=last_part, skipped_lines=skipped,
        redactions=dict(sorted(agg.redactions.items())), catalog=header.catalog)
    package = TelemetryPackage(
        schema_version=SCHEMA_VERSION, package_id=package_id,
        export_timestamp=header.export_timestamp, branchpy_version=header.branchpy_version,
        platform=header.platform, summary=summary,
        performance_metrics={} if empty else agg.performance_metrics(),
        usage_statistics=UsageStatistics() if empty else agg.usage_statistics(),
        errors=[] if empty else agg.error_samples(),
        governance_id=header.governance_id,
        correlation_ids=[] if empty else agg.sorted_correlation_ids())
    return _enc.encode(package)


def output_base(output: Path) -> Path:
    """`/x/rc-metrics.json` -> `/x/rc-metrics` (parts and the report are named from it)."""
    name = output.name
    if name.lower().endswith(".json"):
        name = name[:-5]
    return output.with_name(_PART_SUFFIX.sub("", name) or name)


def part_path(output: Path, part: int) -> Path:
    base = output_base(output)
    return base.with_name(f"{base.name}.part{part:03d}.json")


def report_path(output: Path) -> Path:
    base = output_base(output)
    return base.with_name(f"{base.name}.redactions.json")


def stale_candidates(output: Path) -> list[Path]:
    """Files an earlier export to the same output may have left: NAME and NAME.partNNN.json."""
    base = output_base(output)
    pattern = re.compile(re.escape(base.name) + r"\.part\d{3,}\.json$")
    try:
        parts = [p for p in base.parent.iterdir() if pattern.match(p.name)]
    except OSError:
        parts = []
    return [output, *sorted(parts)]


def remove_stale_exports(exports_file: Path, output: Path, written: list[Path]) -> list[Path]:
    """Remove what an earlier export to the same output left and this one did not
    rewrite (a single file now split, or fewer parts than before), so one output
    name never mixes two exports. Only files our exports record lists are touched."""
    keep = {p.resolve() for p in written}
    removed = []
    for path in stale_candidates(output):
        if path.resolve() in keep or not path.is_file() or find_export_record(exports_file, path) is None:
            continue
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            continue
    return removed


class PartWriter:
    """One file being written: a hidden temporary file (mode 0600, an `AtomicFile`) beside
    its final name, hashed as it is written; `finish` fsyncs it, `commit` then gives it
    its name. Any failure is a StorageError and leaves nothing."""

    def __init__(self, near: Path) -> None:
        self.near = near  # what errors name (the temporary name would puzzle a user)
        self.digest = hashlib.sha256()
        self.size = 0
        try:
            self.file = AtomicFile(near)
        except OSError as exc:
            raise _storage_error(near, exc) from None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        try:
            self.file.write(data)
        except OSError as exc:
            self.discard()
            raise _storage_error(self.near, exc) from None
        self.digest.update(data)
        self.size += len(data)

    def finish(self) -> tuple[str, int]:
        """(sha256, size) of the complete, fsynced file."""
        try:
            self.file.finish()
        except OSError as exc:
            self.discard()
            raise _storage_error(self.near, exc) from None
        return self.digest.hexdigest(), self.size

    def commit(self, path: Path) -> None:
        """Give the finished file its final name `path` (in the folder of `near`), atomically."""
        try:
            self.file.commit(path)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror}") from None

    def discard(self) -> None:
        self.file.discard()


def _storage_error(path: Path, exc: OSError) -> StorageError:
    return StorageError(f"cannot write {path}: {exc.strerror}",
                        hint="check the folder exists, is writable and the disk is not full")
