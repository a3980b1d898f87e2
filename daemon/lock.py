"""The single-instance lock: `fcntl.flock` on `paths.daemon_lock`.

The kernel drops the lock when the process dies, so a crash never leaves a
stale lock behind; the pid written inside is informational only.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class AlreadyRunningError(Exception):
    def __init__(self, lock_file: Path, pid: str):
        super().__init__(f"another daemon (pid {pid or 'unknown'}) holds {lock_file}")
        self.lock_file = lock_file
        self.pid = pid


class InstanceLock:
    def __init__(self, lock_file: Path):
        self.lock_file = lock_file
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunningError (never waits)."""
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise AlreadyRunningError(self.lock_file, pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
