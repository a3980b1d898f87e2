"""The one lock around a delivery run.

Auto-mode runs, `sync`, `upload`, `purge` and housekeeping all read and move
the same files: the spool, the checkpoints, the outbox, the ledger and the
counters. Holding the daemon's `DeliveryLock` (`DaemonContext.delivery_lock`)
is what keeps two of them from doing that at once; nothing else in the
delivery path locks around a run.

Who takes it, and how:
- `sync` and `upload` wait for a run in flight, then run.
- A scheduled auto run skips its turn while another run (scheduled or
  `sync`) holds the lock, since that run does the same work; it waits out a
  shorter holder (`upload`, `purge`, housekeeping).
- Housekeeping skips its turn while anything holds the lock.
- `purge` and the daemon's shutdown wait a bounded time.

Each holder names itself, so a skipped turn can say what it gave way to.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class DeliveryLock:
    """A non-reentrant lock that remembers what holds it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: str | None = None

    @property
    def holder(self) -> str | None:
        """What holds the lock now (e.g. "sync", "upload"), or None when it is free."""
        return self._holder

    def acquire(self, holder: str, timeout: float | None = None) -> bool:
        """Take the lock for `holder`, waiting up to `timeout` seconds (None: as long as it
        takes; 0: not at all). True when taken."""
        taken = self._lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout))
        if taken:
            self._holder = holder
        return taken

    def release(self) -> None:
        self._holder = None
        self._lock.release()

    @contextmanager
    def held(self, holder: str) -> Iterator[None]:
        """Hold the lock for the block, waiting for a run in flight first."""
        self.acquire(holder)
        try:
            yield
        finally:
            self.release()

    def wait_until_free(self, timeout: float) -> bool:
        """True when nothing holds the lock within `timeout` seconds (it is left free)."""
        if not self._lock.acquire(timeout=max(0.0, timeout)):
            return False
        self._lock.release()
        return True
