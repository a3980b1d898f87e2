"""The writer's side of the spool protocol: `SpoolAppender` (one per process).

The protocol itself — how writers and the rotator share the active file and
the `rotation.gen` counter — is described in `client/emitter/spool.py`, which also
holds the rotator and the shared primitives.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path
from typing import Any

from branchpy_telemetry.client.contracts.paths import ensure_private_dir
from branchpy_telemetry.client.emitter.spool import (
    ACTIVE_NAME,
    GENERATION_NAME,
    LOCK_TIMEOUT_S,
    RECHECK_INTERVAL_S,
    _Generation,
    fcntl,
    lock_exclusive,
)

_monotonic = time.monotonic
if fcntl is not None:
    _flock, _LOCK_EX_NB, _LOCK_UN = fcntl.flock, fcntl.LOCK_EX | fcntl.LOCK_NB, fcntl.LOCK_UN
else:
    def _flock(fd: int, operation: int) -> None:
        return None
    _LOCK_EX_NB = _LOCK_UN = 0
_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


class SpoolWriteError(Exception):
    """A line could not be appended (the emitter counts it; never reaches callers of emit)."""


class SpoolAppender:
    """Appends complete lines to one spool's active file, following the protocol above."""

    def __init__(self, spool_dir: Path, *, recheck_interval_s: float = RECHECK_INTERVAL_S,
                 lock_timeout_s: float = LOCK_TIMEOUT_S):
        self.spool_dir = Path(spool_dir)
        self.recheck_interval_s = recheck_interval_s
        self.lock_timeout_s = lock_timeout_s
        self.path = self.spool_dir / ACTIVE_NAME
        self._mutex = threading.Lock()
        self._fd = -1
        self._ino = self._dev = -1
        self._gen: _Generation | None = None
        self._seen_gen = -1
        self._recheck_at = 0.0
        self._dir_ready = False
        self._needs_newline = False

    def append(self, line: bytes, tally: Any = None) -> None:
        """Write one complete line (ending in b"\\n") with one write(). Raises SpoolWriteError.

        `tally.emitted` (the emitter's counters), if given, is incremented under the
        writer's lock once the line is written: threads cannot lose a count.
        """
        with self._mutex:
            if self._needs_newline:
                line = b"\n" + line
            for _ in range(8):
                fd = self._fd
                if fd < 0:
                    fd = self._open()
                try:
                    _flock(fd, _LOCK_EX_NB)
                except BlockingIOError:
                    if not lock_exclusive(fd, self.lock_timeout_s):
                        raise SpoolWriteError("timed out waiting for the spool lock") from None
                try:
                    gen = self._gen
                    if ((gen is None or gen.view[0] != self._seen_gen or _monotonic() >= self._recheck_at)
                            and not self._verify_locked()):
                        continue  # rotated or removed: reopen (the finally unlocks and closes)
                    written = os.write(fd, line)
                    if written != len(line):
                        self._complete_or_undo(fd, line, written)
                    self._needs_newline = False
                    if tally is not None:
                        tally.emitted += 1
                    return
                except OSError as exc:
                    raise SpoolWriteError(f"write failed: {exc.strerror or exc}") from exc
                finally:
                    _flock(fd, _LOCK_UN)
                    if self._fd != fd:
                        os.close(fd)
            raise SpoolWriteError("the active spool file keeps changing under the writer")

    def close(self) -> None:
        with self._mutex:
            self._drop_fd()
            if self._gen is not None:
                self._gen.close()
                self._gen = None

    def after_fork_in_child(self) -> None:
        """The inherited descriptor shares the parent's lock: forget it, reopen on next write."""
        self._mutex = threading.Lock()
        self._drop_fd()

    # -- internals (called with self._mutex held) --

    def _open(self) -> int:
        try:
            return self._open_active()
        except OSError as exc:
            raise SpoolWriteError(f"cannot open {self.path}: {exc.strerror or exc}") from exc

    def _open_active(self) -> int:
        if not self._dir_ready:
            ensure_private_dir(self.spool_dir)
            self._dir_ready = True
        try:
            fd = os.open(self.path, _OPEN_FLAGS, 0o600)
        except FileNotFoundError:  # the spool folder was removed: recreate it
            ensure_private_dir(self.spool_dir)
            fd = os.open(self.path, _OPEN_FLAGS, 0o600)
        st = os.fstat(fd)
        if os.name == "posix" and st.st_mode & 0o077:
            os.fchmod(fd, 0o600)
        self._fd, self._ino, self._dev = fd, st.st_ino, st.st_dev
        if self._gen is None or not self._gen.still_current():
            self._open_generation()
        self._seen_gen = -1  # force the slow check under the lock
        return fd

    def _open_generation(self) -> None:
        if self._gen is not None:
            self._gen.close()
            self._gen = None
        try:
            self._gen = _Generation(self.spool_dir / GENERATION_NAME)
        except (OSError, ValueError):
            self._gen = None  # no fast check: stat on every write (still correct)

    def _verify_locked(self) -> bool:
        """Under the lock: is our descriptor the active file? If not, mark it for reopening."""
        seen = self._gen.view[0] if self._gen is not None else -1
        try:
            st = os.stat(self.path)
            current = st.st_ino == self._ino and st.st_dev == self._dev
        except FileNotFoundError:
            current = False
        if not current:
            self._fd = -1  # caller unlocks and closes the old descriptor
            return False
        if self._gen is not None and not self._gen.still_current():
            self._open_generation()
            seen = self._gen.view[0] if self._gen is not None else -1
        self._seen_gen = seen
        self._recheck_at = time.monotonic() + self.recheck_interval_s
        return True

    def _complete_or_undo(self, fd: int, line: bytes, written: int) -> None:
        """After a short write: finish the line, or cut the fragment off. Raises SpoolWriteError.

        We hold the exclusive lock, so our fragment is the tail of the file.
        """
        rest = line[written:]
        try:
            while rest:
                n = os.write(fd, rest)
                if n <= 0:
                    raise OSError(errno.EIO, "no progress")
                rest = rest[n:]
            return
        except OSError as exc:
            reason = exc.strerror or str(exc)
        end = os.lseek(fd, 0, os.SEEK_CUR)  # O_APPEND: just after our fragment
        try:
            if os.fstat(fd).st_size != end:
                raise OSError(errno.EAGAIN, "the file grew behind the fragment")
            os.ftruncate(fd, end - (len(line) - len(rest)))
        except OSError:
            self._needs_newline = True  # our next line starts on a line of its own
        raise SpoolWriteError(f"short write ({reason})")

    def _drop_fd(self) -> None:
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1
