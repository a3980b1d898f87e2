"""Crash-safe private files: the one way this project replaces a file it owns.

`AtomicFile` writes a temp file in the same folder (created with O_EXCL and
O_NOFOLLOW, so never through a planted symlink, and given exactly its mode,
0600 unless the caller says otherwise, whatever the umask), fsyncs it,
renames it over the target and fsyncs the folder. A crash or a full disk at
any point leaves the old file or the new one whole, never a half-written
file under the final name, and never a moment where a secret is readable by
others; a failure (an OSError, or an exception raised by the caller while it
streams the contents) removes the temp file. Temp files are hidden
(`.NAME.tmp-…`) so listings that skip dotfiles never see them.

`write_atomic(path, data)` is the one-call form; `with AtomicFile(path) as f:
f.write(...)` streams (committed when the block ends, discarded when it
raises). Used for every file the project replaces: the config file (API
key), `local-backend.json` (backend keys), the tcp address file (token), the
install id, unit and env files, export packages and their redaction reports,
and the daemon's counters, checkpoints and outbox.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

TEMP_MARKER = ".tmp-"
PRIVATE_MODE = 0o600
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def temp_path_for(path: Path) -> Path:
    return path.with_name(f".{path.name}{TEMP_MARKER}{uuid.uuid4().hex[:12]}")


def is_temp_file(path: Path) -> bool:
    return path.name.startswith(".") and TEMP_MARKER in path.name


def write_atomic(path: Path, data: bytes, *, mode: int = PRIVATE_MODE) -> Path:
    """Replace `path` with `data` atomically; the file has exactly `mode` (default 0600)."""
    with AtomicFile(path, mode=mode) as file:
        file.write(data)
    return file.path


class AtomicFile:
    """A file written under a hidden temp name beside `path`, then given its name at once.

    `write` appends bytes; `finish` makes them durable (flush, fsync, close);
    `commit` renames the temp file over the target and fsyncs the folder;
    `commit_new` does so only when nothing holds the name yet; `discard` removes
    the temp file. Every failure of `commit` discards. As a context manager it
    commits when the block ends normally and discards when the block raises.
    """

    def __init__(self, path: Path, *, mode: int = PRIVATE_MODE) -> None:
        self.path = Path(path)
        self.temp = temp_path_for(self.path)
        fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, mode)
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, mode)  # exactly `mode`, whatever the umask
            self.file = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            self.temp.unlink(missing_ok=True)
            raise

    def write(self, data: bytes | bytearray | memoryview) -> int:
        return self.file.write(data)

    def finish(self) -> None:
        """Flush, fsync and close the temp file (once): its bytes are on disk."""
        if self.file.closed:
            return
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
        finally:
            self.file.close()

    def commit(self, path: Path | None = None) -> Path:
        """Rename the temp file over `path` (by default the one given at the start; another
        name must be in the same folder), replacing what is there, and fsync the folder."""
        target = self.path if path is None else Path(path)
        try:
            self.finish()
            os.replace(self.temp, target)
        except BaseException:
            self.discard()
            raise
        fsync_dir(target.parent)
        return target

    def commit_new(self) -> bool:
        """Give the file its name only if no file holds it yet (a hard link never overwrites).

        True when it did. False when another file holds the name: the temp file
        stays, for `commit` (replace it after all) or `discard`.
        """
        try:
            self.finish()
            os.link(self.temp, self.path)
        except FileExistsError:
            return False
        except BaseException:
            self.discard()
            raise
        self.temp.unlink(missing_ok=True)
        fsync_dir(self.path.parent)
        return True

    def discard(self) -> None:
        """Remove the temp file (the target, if any, is left as it was)."""
        try:
            self.file.close()
        except OSError:
            pass
        self.temp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def fsync_dir(directory: Path) -> None:
    """Make a rename/unlink in `directory` durable (no-op where unsupported)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
