"""A log file that rotates by size: `daemon.log`, then `daemon.log.1` … `.3`.

For a daemon the CLI started (no journal to rotate for it). The file is
created 0600 (it names this user's folders and commands) and never opened
through a symlink. When the process' stdout or stderr is that same file
(the CLI starts the daemon so), it is pointed at the new file after each
rotation, so that what does not go through logging (a fatal message, a
thread's traceback) lands beside the log lines instead of in a rotated or
deleted file.
"""

from __future__ import annotations

import logging.handlers
import os
import sys
from pathlib import Path

MAX_BYTES = 5 * 1024 * 1024
GENERATIONS = 3  # daemon.log.1 … daemon.log.3; the oldest is deleted at the next rotation
_OPEN_FLAGS = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
               | getattr(os, "O_CLOEXEC", 0))


class RotatingPrivateLog(logging.handlers.RotatingFileHandler):
    def __init__(self, path: Path, *, max_bytes: int = MAX_BYTES, generations: int = GENERATIONS):
        super().__init__(path, maxBytes=max_bytes, backupCount=generations, encoding="utf-8", delay=False)

    def _open(self):
        fd = os.open(self.baseFilename, _OPEN_FLAGS, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)

    def doRollover(self) -> None:
        old = _identity(self.stream)
        followers = [std for std in (sys.stdout, sys.stderr) if old is not None and _identity(std) == old]
        super().doRollover()
        for std in followers:
            try:
                std.flush()
                os.dup2(self.stream.fileno(), std.fileno())
            except (OSError, ValueError, AttributeError):
                continue


def _identity(stream) -> tuple[int, int] | None:
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return st.st_dev, st.st_ino
