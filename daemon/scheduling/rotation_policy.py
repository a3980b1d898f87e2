"""When to rotate the active spool file (`telemetry.rotation.*`, docs/cli.md).

Rotate when the active file is larger than `max_file_mb`, or older than
`max_age`. A file's age is the time of its first event (its first line's
`ts`), falling back to the file's modification time when that line does not
decode: POSIX has no portable creation time, and the first event is what
"how old is this data" means anyway. The rotation itself is the spool's
protocol (`client.emitter.spool.rotate_spool`), safe against concurrent writers.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import structlog

from branchpy_telemetry.client.contracts.config import Config
from branchpy_telemetry.client.contracts.errors import TelemetryError
from branchpy_telemetry.client.contracts.timewindow import parse_duration, parse_time
from branchpy_telemetry.client.emitter.spool import ACTIVE_NAME, rotate_spool

log = structlog.get_logger("branchpy.rotation")

MB = 1024 * 1024
HEAD_BYTES = 64 * 1024


class _Head(msgspec.Struct):
    ts: str | None = None


_head_decoder = msgspec.json.Decoder(_Head)


def rotation_reason(active: Path, config: Config, now: datetime) -> str | None:
    """"size" or "age" when `active` is due for rotation, else None (also when missing or empty)."""
    try:
        st = active.stat()
    except FileNotFoundError:
        return None
    if st.st_size == 0:
        return None
    if st.st_size > config.telemetry.rotation.max_file_mb * MB:
        return "size"
    born = first_event_time(active) or datetime.fromtimestamp(st.st_mtime, UTC)
    if now - born > parse_duration(config.telemetry.rotation.max_age):
        return "age"
    return None


def first_event_time(path: Path) -> datetime | None:
    """The `ts` of the file's first line, or None when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError:
        return None
    line = head.split(b"\n", 1)[0]
    try:
        ts = _head_decoder.decode(line).ts
        return parse_time(ts) if ts else None
    except (msgspec.MsgspecError, TelemetryError):
        return None


def apply_rotation_policy(spool_dir: Path, config: Config, now: datetime | None = None) -> Path | None:
    """Rotate the active spool file if it is due; returns the rotated file or None."""
    now = now or datetime.now(UTC)
    reason = rotation_reason(Path(spool_dir) / ACTIVE_NAME, config, now)
    if reason is None:
        return None
    rotated = rotate_spool(spool_dir)
    if rotated is not None:
        log.info("spool.rotated", reason=reason, file=os.path.basename(rotated))
    return rotated
