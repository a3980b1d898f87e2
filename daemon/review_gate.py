"""Which package files `upload --file` may send: the rule a careful user expects.

A file goes out only if its exact bytes are known to this machine:
- **exported here**: its sha256 is one `export` recorded (`exports.jsonl`),
  under this name or another (an unchanged copy is the same package); or
- **reviewed here**: the user passes `--reviewed`, and `preview` showed
  exactly these bytes and found them VALID (`reviews.jsonl`, written by
  `preview`).

Everything else is refused before anything is sent: a file edited after
export (`package_changed`) and a file this machine never exported, such as
an edited copy saved under another name (`not_reviewed`). Both hints lead
to the same two steps: `preview FILE`, then `upload --file FILE --reviewed`.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from branchpy_telemetry.client.errors import NotReviewedError, PackageChangedError, StorageError
from branchpy_telemetry.client.timewindow import format_ts, utcnow

from .package_writer import EXPORTS_RECORD, append_records, find_export_record

REVIEWS_RECORD = "reviews.jsonl"


class ReviewRecord(msgspec.Struct, kw_only=True):
    """One VALID preview: the bytes a person was shown (by sha256), where and when."""

    sha256: str
    path: str
    when: str


class _Sha(msgspec.Struct):
    sha256: str


def record_review(data_dir: Path, path: Path, sha256: str) -> None:
    """Remember that `preview` showed these bytes and found them VALID (append, 0600)."""
    record = ReviewRecord(sha256=sha256, path=str(path), when=format_ts(utcnow()))
    append_records(data_dir / REVIEWS_RECORD, msgspec.json.encode(record) + b"\n", "review")


def _holds_sha(record_file: Path, sha256: str) -> bool:
    """True when a line of `record_file` (exports or reviews) carries this sha256."""
    decoder = msgspec.json.Decoder(_Sha)
    needle = sha256.encode()
    try:
        with open(record_file, "rb") as fh:
            for line in fh:
                if needle not in line:
                    continue
                try:
                    if decoder.decode(line).sha256 == sha256:
                        return True
                except msgspec.MsgspecError:
                    continue
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StorageError(f"{record_file}: cannot read: {exc.strerror}") from None
    return False


def was_exported(data_dir: Path, sha256: str) -> bool:
    return _holds_sha(data_dir / EXPORTS_RECORD, sha256)


def was_reviewed(data_dir: Path, sha256: str) -> bool:
    return _holds_sha(data_dir / REVIEWS_RECORD, sha256)


def check_sendable(data_dir: Path, path: Path, sha256: str, *, reviewed: bool) -> None:
    """Raise PackageChangedError / NotReviewedError unless `upload --file` may send these bytes."""
    if was_exported(data_dir, sha256):
        return
    next_steps = (f"review what it holds now: `branchpy telemetry preview {path}`, then send it with "
                  f"`branchpy telemetry upload --file {path} --reviewed`")
    if reviewed:
        if was_reviewed(data_dir, sha256):
            return
        raise NotReviewedError(
            f"{path} was not previewed as it is now (sha256 {sha256[:12]}…), or its preview was not "
            "VALID: nothing was sent",
            hint=f"run `branchpy telemetry preview {path}` first; --reviewed confirms what it showed")
    record = find_export_record(data_dir, path)
    if record is not None:
        raise PackageChangedError(
            f"{path} changed since it was exported (sha256 {sha256[:12]}…, exported as "
            f"{record.sha256[:12]}…): nothing was sent",
            hint=next_steps + "; or export a fresh package")
    raise NotReviewedError(
        f"{path} was not exported by this machine (or was changed after export): nothing was sent",
        hint=next_steps)
