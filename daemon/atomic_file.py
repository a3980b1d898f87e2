"""Crash-safe file replacement: temp file + fsync + rename + directory fsync.

A crash at any point leaves either the old file or the new one, never a
half-written file under the final name. Temp files are hidden (`.NAME.tmp-…`)
so directory listings that skip dotfiles never see them.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

TEMP_MARKER = ".tmp-"


def temp_path_for(path: Path) -> Path:
    return path.with_name(f".{path.name}{TEMP_MARKER}{uuid.uuid4().hex[:12]}")


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> Path:
    """Write `data` to `path` atomically (same directory, so rename is atomic)."""
    path = Path(path)
    tmp = temp_path_for(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def fsync_dir(directory: Path) -> None:
    """Make a rename/unlink in `directory` durable (no-op where unsupported)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_temp_file(path: Path) -> bool:
    return path.name.startswith(".") and TEMP_MARKER in path.name
