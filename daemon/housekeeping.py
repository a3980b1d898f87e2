"""Housekeeping between deliveries: rotation (`telemetry.rotation.*`) and local
retention (`telemetry.retention.*`) on a timer, in every mode.

Auto runs and `sync` already rotate and apply retention as part of their
run; this thread makes the same two steps happen while nothing is being
delivered too (manual mode, long auto intervals). It shares the delivery
lock and simply skips a turn while a run holds it. A failing turn is logged
and never stops the thread.
"""

from __future__ import annotations

import threading

import structlog

from ..client.config import Config
from ..client.paths import TelemetryPaths

log = structlog.get_logger("branchpy.housekeeping")

DEFAULT_INTERVAL_S = 60.0


def run_housekeeping(paths: TelemetryPaths, config: Config, lock: threading.Lock) -> bool:
    """One turn; False when a delivery run holds the lock (it does the same work itself)."""
    from .auto_job import open_outbox  # lazy: the delivery stack is heavy, daemon start-up is not
    from .checkpoints import CheckpointStore
    from .counters import CounterStore
    from .retention import apply_retention
    from .rotation_policy import apply_rotation_policy
    from .spool_reader import extension_dir

    if not lock.acquire(blocking=False):
        return False
    try:
        rotated = apply_rotation_policy(paths.spool_dir, config)
        counters = CounterStore(paths.counters_file)
        outbox = open_outbox(paths, config, counters)
        store = CheckpointStore.load(paths.checkpoints_file)
        retained = apply_retention(paths.spool_dir, config, store, outbox, counters,
                                   extension_dir=extension_dir(paths, config))
        if rotated or retained.deleted:
            log.info("housekeeping.done", rotated=str(rotated) if rotated else None,
                     deleted=len(retained.deleted), bytes=retained.bytes)
        return True
    finally:
        lock.release()


class Housekeeper:
    """A daemon thread running `run_housekeeping` every `interval_s` (first turn at start)."""

    def __init__(self, daemon, interval_s: float = DEFAULT_INTERVAL_S):
        self.daemon = daemon
        self.interval_s = interval_s
        self.turns = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="housekeeping", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            try:
                if run_housekeeping(self.daemon.paths, self.daemon.config, self.daemon.delivery_lock):
                    self.turns += 1
            except Exception:  # a bad turn (disk trouble, a vanished file) must not end the loop
                log.exception("housekeeping.failed")
            if self._stop.wait(self.interval_s):
                return
