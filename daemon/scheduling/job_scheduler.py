"""The daemon's one scheduler: an APScheduler 3.x BackgroundScheduler for every timed job.

Two jobs live in it: the auto-mode run (`daemon/scheduling/scheduler.py`, auto mode
only) and housekeeping (`daemon/scheduling/housekeeping.py`, every mode). Every job is
an interval job with an explicit id and `replace_existing=True`, and
`max_instances=1` + `coalesce=True` so a slow turn never overlaps the next
and missed turns collapse into one, and a `misfire_grace_time`. The
scheduler's thread starts with the first job and stops at `shutdown`; an
error a job lets through is logged by one listener (jobs catch their own).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from apscheduler.events import EVENT_JOB_ERROR, JobEvent
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = structlog.get_logger("branchpy.scheduler")

Listener = Callable[[JobEvent], None]


class JobScheduler:
    """Interval jobs by id in one BackgroundScheduler (created on the first job)."""

    def __init__(self) -> None:
        self._scheduler: BackgroundScheduler | None = None
        self._listeners: list[tuple[Listener, int]] = [(_log_job_error, EVENT_JOB_ERROR)]
        self._guard = threading.Lock()  # start / shutdown from the loop and from worker threads

    # -- jobs ------------------------------------------------------------------
    def schedule(self, job_id: str, fn: Callable[[], object], *, name: str, interval_s: float,
                 misfire_grace_s: int, jitter_s: float | None = None, run_now: bool = False) -> None:
        """Add the job, or replace the one with this id; `run_now`: first turn now, not after an interval."""
        first = {"next_run_time": datetime.now(UTC)} if run_now else {}
        self._started().add_job(fn, trigger=_trigger(interval_s, jitter_s), id=job_id, name=name,
                                replace_existing=True, max_instances=1, coalesce=True,
                                misfire_grace_time=misfire_grace_s, **first)

    def reschedule(self, job_id: str, *, interval_s: float, misfire_grace_s: int,
                   jitter_s: float | None = None) -> None:
        """A new interval for a scheduled job (its next turn is one interval from now)."""
        scheduler = self._started()
        scheduler.modify_job(job_id, misfire_grace_time=misfire_grace_s)
        scheduler.reschedule_job(job_id, trigger=_trigger(interval_s, jitter_s))

    def remove(self, job_id: str) -> None:
        """Remove the job if it is scheduled."""
        if self.job(job_id) is not None:
            self._scheduler.remove_job(job_id)

    # -- queries ---------------------------------------------------------------
    def job(self, job_id: str) -> Job | None:
        return self._scheduler.get_job(job_id) if self._scheduler is not None else None

    def jobs(self) -> list[Job]:
        return self._scheduler.get_jobs() if self._scheduler is not None else []

    def interval_s(self, job_id: str) -> float | None:
        """The interval the job runs at (its trigger's), None when it is not scheduled."""
        job = self.job(job_id)
        return job.trigger.interval.total_seconds() if job is not None else None

    def next_run_time(self, job_id: str) -> datetime | None:
        job = self.job(job_id)
        return job.next_run_time if job is not None else None

    # -- lifecycle -------------------------------------------------------------
    def add_listener(self, callback: Listener, mask: int) -> None:
        """Call `callback` for these APScheduler events (of every job; filter by `event.job_id`)."""
        with self._guard:
            self._listeners.append((callback, mask))
            if self._scheduler is not None:
                self._scheduler.add_listener(callback, mask)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the scheduler's thread and drop every job; `wait`: for turns in flight too."""
        with self._guard:
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=wait)

    def _started(self) -> BackgroundScheduler:
        with self._guard:
            if self._scheduler is None:
                scheduler = BackgroundScheduler(timezone=UTC, daemon=True)
                for callback, mask in self._listeners:
                    scheduler.add_listener(callback, mask)
                scheduler.start()
                self._scheduler = scheduler
            return self._scheduler


def _trigger(interval_s: float, jitter_s: float | None) -> IntervalTrigger:
    return IntervalTrigger(seconds=interval_s, jitter=jitter_s or None, timezone=UTC)


def _log_job_error(event: JobEvent) -> None:
    log.error("scheduler.job_error", job=event.job_id, error=repr(getattr(event, "exception", None)))
