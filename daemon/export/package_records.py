"""What this machine knows about package files: `exports.jsonl` and `reviews.jsonl`.

Both are private (0600) JSON-lines files of the state folder
(`paths.exports_file`, `paths.reviews_file`), appended to and never
rewritten; a line that does not decode is skipped. `export` appends one
`ExportRecord` per file it writes (where, its sha256, what it holds);
`preview` appends one `ReviewRecord` per VALID preview. `upload --file` asks
them whether these exact bytes were exported or reviewed here
(`review_gate`), `preview` shows what an export left out, and `export`
removes only files an earlier export recorded. `purge` deletes both.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec

from branchpy_telemetry.client.contracts.errors import StorageError
from branchpy_telemetry.client.contracts.timewindow import format_ts, utcnow


class ExportRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One package file an export wrote."""

    path: str  # resolved
    sha256: str
    package_id: str
    events: int
    bytes: int
    created: str
    # event names this export left out because the catalog does not declare them ("category/name" ->
    # count): shown to this machine's user by `preview`, never written into a package or its report
    undeclared: dict[str, int] = {}


class ReviewRecord(msgspec.Struct, kw_only=True):
    """One VALID preview: the bytes a person was shown (by sha256), where and when."""

    sha256: str
    path: str
    when: str


class _Sha(msgspec.Struct):
    sha256: str


_enc = msgspec.json.Encoder()


def record_exports(exports_file: Path, records: Iterable[ExportRecord]) -> None:
    """Append the files an export wrote (path + sha256, …)."""
    lines = b"".join(_enc.encode(r) + b"\n" for r in records)
    if lines:
        _append(exports_file, lines, "export")


def record_review(reviews_file: Path, path: Path, sha256: str) -> None:
    """Remember that `preview` showed these bytes and found them VALID."""
    record = ReviewRecord(sha256=sha256, path=str(path), when=format_ts(utcnow()))
    _append(reviews_file, _enc.encode(record) + b"\n", "review")


def find_export_record(exports_file: Path, path: Path) -> ExportRecord | None:
    """The latest record for `path` (resolved), or None."""
    target = str(path.resolve())
    found = None
    for record in _read(exports_file, ExportRecord):
        if record.path == target:
            found = record
    return found


def was_exported(exports_file: Path, sha256: str) -> bool:
    """True when an export recorded a file with these bytes (under any name)."""
    return _holds_sha256(exports_file, sha256)


def was_reviewed(reviews_file: Path, sha256: str) -> bool:
    """True when `preview` showed these bytes and found them VALID."""
    return _holds_sha256(reviews_file, sha256)


def _holds_sha256(record_file: Path, sha256: str) -> bool:
    needle = sha256.encode()
    return any(r.sha256 == sha256 for r in _read(record_file, _Sha, needle=needle))


def _read(record_file: Path, kind: type, *, needle: bytes | None = None) -> Iterator:
    """Each line of `record_file` that decodes as `kind` (only lines holding `needle`, if given)."""
    decoder = msgspec.json.Decoder(kind)
    try:
        with open(record_file, "rb") as fh:
            for line in fh:
                if needle is not None and needle not in line:
                    continue
                try:
                    yield decoder.decode(line)
                except msgspec.MsgspecError:
                    continue
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StorageError(f"{record_file}: cannot read: {exc.strerror}") from None


def _append(record_file: Path, lines: bytes, what: str) -> None:
    """Append JSON lines to a private (0600) record file of the state folder."""
    try:
        record_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(record_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as fh:
            fh.write(lines)
    except OSError as exc:
        raise StorageError(f"cannot record the {what} in {record_file}: {exc.strerror}",
                           hint="check the telemetry state folder is writable") from None
