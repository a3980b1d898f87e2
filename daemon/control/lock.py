"""The single-instance lock on `paths.daemon_lock` (`client.infra.file_lock`: flock, msvcrt on Windows).

The kernel drops the lock when the process dies, so a crash never leaves a
stale lock behind; the pid written inside is informational only.
"""

from __future__ import annotations

import os
from pathlib import Path

from branchpy_telemetry.client.infra.file_lock import open_lock_file, try_lock, unlock


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
        fd = open_lock_file(self.lock_file)
        try:
            try_lock(fd)
        except OSError:
            pid = _read_pid(fd)
            os.close(fd)
            raise AlreadyRunningError(self.lock_file, pid) from None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            unlock(self._fd)
            os.close(self._fd)
            self._fd = None


def _read_pid(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 32).decode(errors="replace").strip()
    except OSError:
        return ""
