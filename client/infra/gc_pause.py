"""`gc_paused()`: the cyclic garbage collector off while a bulk job streams
short-lived, acyclic objects (the daemon's export, the backend's upload).

Reference counting frees every decoded record, row tuple and Struct as soon
as it is dropped; what costs is the generational scans that allocation bursts
trigger (~30 % of an export's CPU, full-heap collections on big uploads).
Nothing in those loops builds cycles, so pausing automatic collection loses
nothing. Counted across threads: the collector comes back (if it was on) when
the last concurrent pauser leaves, and then runs as usual.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_pausers = 0
_was_enabled = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    global _pausers, _was_enabled
    with _lock:
        if _pausers == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pausers += 1
    try:
        yield
    finally:
        with _lock:
            _pausers -= 1
            if _pausers == 0 and _was_enabled:
                gc.enable()
