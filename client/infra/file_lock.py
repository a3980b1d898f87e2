"""Advisory file locks between processes: the one lock helper outside the spool.

POSIX: `fcntl.flock` on the whole file. Windows: `msvcrt.locking` on one byte
far past any text the file holds, so other processes can still read it (the
single-instance lock keeps its holder's pid there). The kernel drops a lock
when its process dies, so a crash never leaves a stale lock behind. The spool
keeps its own lock protocol (bounded waits on the active file itself).

- `open_lock_file` + `try_lock` / `unlock`: a lock held for a long time (the
  daemon's single-instance lock), taken without waiting.
- `locked(path)`: a short critical section shared with other processes,
  waiting for the lock (the daemon's counters file).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt

_WINDOWS_LOCK_OFFSET = 1 << 20  # the byte locked on Windows: past any text the file holds


def open_lock_file(path: Path) -> int:
    """A descriptor on `path` (created 0600, never through a symlink) to lock."""
    return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)


def try_lock(fd: int) -> None:
    """Take the exclusive lock now, or raise OSError when another process holds it."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    else:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)


def lock(fd: int) -> None:
    """Take the exclusive lock, waiting for the process that holds it (Windows gives up,
    with an OSError, after about ten seconds)."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
    else:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)


def unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the exclusive lock on `path` (a lock file, created as needed) for the block."""
    fd = open_lock_file(path)
    try:
        lock(fd)
        try:
            yield
        finally:
            unlock(fd)
    finally:
        os.close(fd)
