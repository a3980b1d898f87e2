"""Auto mode's schedule: one job in the daemon's scheduler (`daemon/scheduling/job_scheduler.py`).

Guardrails: one job with an explicit id and
`replace_existing=True`; `max_instances=1` + `coalesce=True` so a slow run
never overlaps the next and missed runs collapse into one; a
`misfire_grace_time`; an IntervalTrigger with jitter; an interval floor
(`INTERVAL_FLOOR_SECONDS`, lowered only by an explicit constructor argument
for tests). A job failure is logged and counted and never kills the daemon.

Every run holds the daemon's delivery lock (`daemon/delivery/delivery_lock.py`):
`run_now()` (the `sync` command) waits for a run in flight and runs the job
in the caller's thread; a scheduled run skips its turn while another run
holds the lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)

from branchpy_telemetry.client.contracts.config import INTERVAL_FLOOR_SECONDS
from branchpy_telemetry.client.contracts.errors import TelemetryError, UsageError
from branchpy_telemetry.client.contracts.timewindow import format_ts
from branchpy_telemetry.daemon.delivery.delivery_lock import DeliveryLock
from branchpy_telemetry.daemon.scheduling.job_scheduler import JobScheduler

log = structlog.get_logger("branchpy.scheduler")

JOB_ID = "telemetry.auto"
JITTER_FRACTION = 0.1  # each run starts up to 10% of the interval late (APScheduler adds 0..jitter) …
MAX_JITTER_SECONDS = 300.0  # … and never more than 5 minutes
SCHEDULED_RUN, MANUAL_RUN = "scheduled run", "sync"  # how a run names itself on the delivery lock


@dataclass(frozen=True)
class RunResult:
    ok: bool
    trigger: str  # "scheduled" | "manual"
    started_at: datetime
    duration_s: float
    value: Any = None
    error: str | None = None  # "Type: message"
    error_code: str | None = None  # TelemetryError.code when the job raised one
    exception: BaseException | None = None

    def to_status(self) -> dict:
        """What `status` shows (JSON-safe)."""
        out = {"ok": self.ok, "trigger": self.trigger, "started_at": format_ts(self.started_at),
               "duration_s": round(self.duration_s, 3)}
        if self.error:
            out["error"] = self.error
            out["error_code"] = self.error_code
        return out


class AutoModeScheduler:
    """The auto-mode job in a `JobScheduler`, its last result and its run counts.

    The daemon passes its own scheduler and delivery lock; without them (tests)
    this scheduler makes its own."""

    def __init__(self, *, interval_floor_s: float = INTERVAL_FLOOR_SECONDS,
                 misfire_grace_s: float | None = None, jitter_fraction: float = JITTER_FRACTION,
                 jobs: JobScheduler | None = None, lock: DeliveryLock | None = None):
        self.interval_floor_s = float(interval_floor_s)
        self._misfire_grace_s = misfire_grace_s
        self._jitter_fraction = jitter_fraction
        self.jobs = jobs if jobs is not None else JobScheduler()
        self.lock = lock if lock is not None else DeliveryLock()
        self._job_fn: Callable[[], Any] | None = None
        self._state_lock = threading.Lock()
        self._last: RunResult | None = None
        self._counts = {"runs": 0, "failures": 0, "missed": 0, "skipped_overlap": 0, "skipped_busy": 0}
        self._done = threading.Condition(self._state_lock)
        self.jobs.add_listener(self._on_event, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED
                               | EVENT_JOB_MAX_INSTANCES)

    # -- lifecycle -------------------------------------------------------------
    def start(self, job_fn: Callable[[], Any], interval_s: float) -> None:
        interval_s = self._check_interval(interval_s)
        self._job_fn = job_fn
        self.jobs.schedule(JOB_ID, self._scheduled_run, name="telemetry auto-mode run", interval_s=interval_s,
                           misfire_grace_s=self._grace(interval_s), jitter_s=self._jitter(interval_s))
        log.info("auto.scheduled", interval_s=interval_s, next_run=_iso(self.next_run_time()))

    def reschedule(self, interval_s: float) -> None:
        interval_s = self._check_interval(interval_s)
        if not self.running:
            raise TelemetryError("auto mode is not running",
                                 hint="start it with `branchpy telemetry mode auto`")
        self.jobs.reschedule(JOB_ID, interval_s=interval_s, misfire_grace_s=self._grace(interval_s),
                             jitter_s=self._jitter(interval_s))
        log.info("auto.rescheduled", interval_s=interval_s, next_run=_iso(self.next_run_time()))

    def stop(self) -> None:
        """Remove the job (manual mode) but keep results and counters."""
        self.jobs.remove(JOB_ID)

    def shutdown(self, wait: bool = True) -> None:
        """Shut the scheduler this job runs in down (with every job in it)."""
        self.jobs.shutdown(wait=wait)

    # -- queries ----------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.jobs.job(JOB_ID) is not None

    @property
    def interval_s(self) -> float | None:
        return self.jobs.interval_s(JOB_ID)

    def next_run_time(self) -> datetime | None:
        return self.jobs.next_run_time(JOB_ID)

    def last_result(self) -> RunResult | None:
        with self._state_lock:
            return self._last

    def counts(self) -> dict[str, int]:
        with self._state_lock:
            return dict(self._counts)

    def wait_for_runs(self, n: int, timeout: float) -> bool:
        """Block until `n` runs (ok or failed) have finished."""
        return self.wait_for(lambda counts: counts["runs"] >= n, timeout)

    def wait_for(self, predicate: Callable[[dict[str, int]], bool], timeout: float) -> bool:
        """Block until `predicate(counts)` holds (counts change on every run and event)."""
        with self._done:
            return self._done.wait_for(lambda: predicate(self._counts), timeout)

    # -- running ------------------------------------------------------------
    def run_now(self, job_fn: Callable[[], Any] | None = None, timeout: float | None = None) -> RunResult:
        """Run the job now in this thread (waiting for a run in flight) and return its result."""
        fn = job_fn or self._job_fn
        if fn is None:
            raise TelemetryError("no auto-mode job to run")
        if not self.lock.acquire(MANUAL_RUN, timeout):
            raise TelemetryError("a run is already in progress", hint="try again when it has finished")
        try:
            return self._run(fn, "manual")
        finally:
            self.lock.release()

    def _scheduled_run(self) -> None:
        if not self.lock.acquire(SCHEDULED_RUN, 0):
            holder = self.lock.holder
            if holder in (SCHEDULED_RUN, MANUAL_RUN):  # that run does this one's work
                self._count("skipped_busy")
                log.info("auto.skipped_busy", busy=holder)
                return
            self.lock.acquire(SCHEDULED_RUN)  # upload, purge or housekeeping: wait it out
        try:
            self._run(self._job_fn, "scheduled")
        finally:
            self.lock.release()

    def _run(self, fn, trigger: str) -> RunResult:
        started, t0 = datetime.now(UTC), time.monotonic()
        try:
            value = fn()
        except Exception as exc:  # a failing run never kills the daemon
            result = RunResult(ok=False, trigger=trigger, started_at=started,
                               duration_s=time.monotonic() - t0, error=f"{type(exc).__name__}: {exc}",
                               error_code=getattr(exc, "code", None) if isinstance(exc, TelemetryError)
                               else "internal_error", exception=exc)
            log.exception("auto.run_failed", trigger=trigger, error=result.error)
        else:
            result = RunResult(ok=True, trigger=trigger, started_at=started,
                               duration_s=time.monotonic() - t0, value=value)
            log.info("auto.run_done", trigger=trigger, duration_s=round(result.duration_s, 3))
        with self._done:
            self._last = result
            self._counts["runs"] += 1
            self._counts["failures"] += 0 if result.ok else 1
            self._done.notify_all()
        return result

    def _on_event(self, event: JobEvent) -> None:
        if event.job_id != JOB_ID:
            return
        if event.code == EVENT_JOB_ERROR:  # only reachable if the wrapper itself failed (logged by `jobs`)
            self._count("failures")
        elif event.code == EVENT_JOB_MISSED:
            self._count("missed")
            log.warning("auto.run_missed", scheduled=_iso(getattr(event, "scheduled_run_time", None)))
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            self._count("skipped_overlap")
            log.info("auto.skipped_overlap")
        # EVENT_JOB_EXECUTED: counted by the wrapper (which also sees manual runs)

    # -- helpers ------------------------------------------------------------
    def _count(self, name: str) -> None:
        with self._done:
            self._counts[name] += 1
            self._done.notify_all()

    def _check_interval(self, interval_s: float) -> float:
        interval_s = float(interval_s)
        if not interval_s >= self.interval_floor_s:
            raise UsageError(f"interval {interval_s:g}s is below the floor of {self.interval_floor_s:g}s",
                             hint=f"use {self.interval_floor_s:g}s or more (e.g. 6h)")
        return interval_s

    def _jitter(self, interval_s: float) -> float:
        return min(MAX_JITTER_SECONDS, interval_s * self._jitter_fraction)

    def _grace(self, interval_s: float) -> int:
        if self._misfire_grace_s is not None:
            return max(1, int(self._misfire_grace_s))
        return max(1, int(interval_s / 2))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
