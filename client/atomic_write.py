"""Crash-safe private files: the one way this project replaces a file it owns.

`write_atomic` writes a temp file in the same folder (created 0600 with
O_EXCL, so never through a planted symlink), fsyncs it, renames it over the
target and fsyncs the folder. A crash or a full disk at any point leaves the
old file or the new one whole, never a half-written file under the final
name, and never a moment where a secret is readable by others. Temp files
are hidden (`.NAME.tmp-…`) so listings that skip dotfiles never see them.
Used for the config file (API key), `local-backend.json` (backend keys), the
tcp address file (token), and the daemon's counters, checkpoints and outbox.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

TEMP_MARKER = ".tmp-"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def temp_path_for(path: Path) -> Path:
    return path.with_name(f".{path.name}{TEMP_MARKER}{uuid.uuid4().hex[:12]}")


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> Path:
    """Replace `path` with `data` atomically; the file has exactly `mode` (default 0600)."""
    path = Path(path)
    tmp = temp_path_for(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), mode)  # exactly `mode`, whatever the umask
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
