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

from branchpy_telemetry.client.contracts.errors import NotReviewedError, PackageChangedError
from branchpy_telemetry.client.contracts.paths import TelemetryPaths
from branchpy_telemetry.daemon.export.package_records import find_export_record, was_exported, was_reviewed


def check_sendable(paths: TelemetryPaths, path: Path, sha256: str, *, reviewed: bool) -> None:
    """Raise PackageChangedError / NotReviewedError unless `upload --file` may send these bytes."""
    if was_exported(paths.exports_file, sha256):
        return
    next_steps = (f"review what it holds now: `branchpy telemetry preview {path}`, then send it with "
                  f"`branchpy telemetry upload --file {path} --reviewed`")
    if reviewed:
        if was_reviewed(paths.reviews_file, sha256):
            return
        raise NotReviewedError(
            f"{path} was not previewed as it is now (sha256 {sha256[:12]}…), or its preview was not "
            "VALID: nothing was sent",
            hint=f"run `branchpy telemetry preview {path}` first; --reviewed confirms what it showed")
    record = find_export_record(paths.exports_file, path)
    if record is not None:
        raise PackageChangedError(
            f"{path} changed since it was exported (sha256 {sha256[:12]}…, exported as "
            f"{record.sha256[:12]}…): nothing was sent",
            hint=next_steps + "; or export a fresh package")
    raise NotReviewedError(
        f"{path} was not exported by this machine (or was changed after export): nothing was sent",
        hint=next_steps)
