"""AutoModeScheduler with a real APScheduler BackgroundScheduler at a short interval.

Synchronization is by conditions/events (wait_for_runs, threading.Event), never by sleeps.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from branchpy_telemetry.client.contracts.config import INTERVAL_FLOOR_SECONDS
from branchpy_telemetry.client.contracts.errors import UsageError
from branchpy_telemetry.daemon.scheduling.scheduler import JOB_ID, AutoModeScheduler

FAST = 0.2  # seconds between runs in these tests (floor lowered explicitly)


@pytest.fixture
def scheduler():
    sched = AutoModeScheduler(interval_floor_s=0.05)
    yield sched
    sched.shutdown(wait=True)


def test_the_job_runs_repeatedly_on_its_interval(scheduler):
    calls = []
    scheduler.start(lambda: calls.append(datetime.now(UTC)) or len(calls), FAST)
    assert scheduler.wait_for_runs(3, timeout=10)
    assert len(calls) >= 3
    assert scheduler.last_result().ok and scheduler.last_result().trigger == "scheduled"
    assert scheduler.counts()["failures"] == 0


def test_a_slow_job_never_overlaps_itself(scheduler):
    release = threading.Event()
    active = [0]
    max_active = [0]
    lock = threading.Lock()

    def slow():
        with lock:
            active[0] += 1
            max_active[0] = max(max_active[0], active[0])
        release.wait(10)
        with lock:
            active[0] -= 1

    scheduler.start(slow, 0.1)
    # While the first run is blocked, later due times are skipped (max_instances=1), not run.
    skipped = scheduler.wait_for(lambda counts: counts["skipped_overlap"] >= 2, timeout=10)
    release.set()
    assert skipped
    assert scheduler.wait_for_runs(2, timeout=10)
    assert max_active[0] == 1


def test_a_raising_job_is_counted_and_the_next_run_still_happens(scheduler):
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("backend exploded")
        return "ok"

    scheduler.start(flaky, FAST)
    assert scheduler.wait_for_runs(2, timeout=10)
    counts = scheduler.counts()
    assert counts["failures"] == 1 and counts["runs"] >= 2
    assert scheduler.last_result().ok and scheduler.last_result().value == "ok"
    assert scheduler.running


def test_failure_result_carries_the_error_for_status(scheduler):
    def boom():
        raise ValueError("nope")

    result = scheduler.run_now(boom)
    assert not result.ok and result.error == "ValueError: nope" and result.error_code == "internal_error"
    assert scheduler.last_result() is result
    assert result.to_status()["error"] == "ValueError: nope"


def test_run_now_runs_synchronously_and_returns_the_value(scheduler):
    scheduler.start(lambda: "scheduled", 3600)
    result = scheduler.run_now(lambda: {"delivered": 3})
    assert result.ok and result.value == {"delivered": 3} and result.trigger == "manual"
    assert scheduler.counts()["runs"] == 1


def test_run_now_waits_for_a_run_in_flight_instead_of_overlapping(scheduler):
    started, release = threading.Event(), threading.Event()
    order = []

    def slow():
        order.append("scheduled-start")
        started.set()
        release.wait(10)
        order.append("scheduled-end")

    scheduler.start(slow, FAST)
    assert started.wait(10)
    waiter = threading.Thread(target=lambda: order.append(scheduler.run_now(lambda: "manual").value))
    waiter.start()
    release.set()
    waiter.join(10)
    assert order[:3] == ["scheduled-start", "scheduled-end", "manual"]


def test_next_run_time_and_reschedule(scheduler):
    scheduler.start(lambda: None, 3600)
    first = scheduler.next_run_time()
    assert first is not None and first - datetime.now(UTC) > timedelta(minutes=59)
    assert first - datetime.now(UTC) <= timedelta(seconds=3600 + 360 + 1)  # interval + jitter
    scheduler.reschedule(120)
    second = scheduler.next_run_time()
    assert second - datetime.now(UTC) <= timedelta(seconds=120 + 12 + 1) and scheduler.interval_s == 120


def test_start_twice_replaces_the_job_instead_of_adding_one(scheduler):
    scheduler.start(lambda: 1, 3600)
    scheduler.start(lambda: 2, 1800)
    jobs = scheduler.jobs.jobs()
    assert [j.id for j in jobs] == [JOB_ID]
    job = jobs[0]
    assert job.max_instances == 1 and job.coalesce and job.misfire_grace_time == 900


def test_stop_removes_the_job_but_keeps_results(scheduler):
    scheduler.start(lambda: None, 3600)
    scheduler.run_now()
    scheduler.stop()
    assert not scheduler.running and scheduler.next_run_time() is None
    assert scheduler.last_result().ok


def test_interval_below_the_floor_is_refused():
    sched = AutoModeScheduler()
    assert sched.interval_floor_s == INTERVAL_FLOOR_SECONDS == 10.0
    with pytest.raises(UsageError, match="below the floor"):
        sched.start(lambda: None, 9.9)
    assert not sched.running
    sched.shutdown()


def test_reschedule_before_start_is_a_clear_error(scheduler):
    from branchpy_telemetry.client.contracts.errors import TelemetryError

    with pytest.raises(TelemetryError, match="not running"):
        scheduler.reschedule(60)


def test_run_now_without_a_job_is_a_clear_error(scheduler):
    from branchpy_telemetry.client.contracts.errors import TelemetryError

    with pytest.raises(TelemetryError, match="no auto-mode job"):
        scheduler.run_now()


def test_a_scheduled_run_skips_while_sync_runs_but_waits_out_an_upload():
    """One lock around every delivery: a scheduled run gives way to a run in flight (it does the
    same work) and waits for a shorter holder such as `upload`."""
    from branchpy_telemetry.daemon.delivery.delivery_lock import DeliveryLock
    from branchpy_telemetry.daemon.scheduling.scheduler import MANUAL_RUN

    lock = DeliveryLock()
    scheduler = AutoModeScheduler(interval_floor_s=0.05, lock=lock)
    try:
        lock.acquire(MANUAL_RUN)
        scheduler.start(lambda: "scheduled", FAST)
        assert scheduler.wait_for(lambda counts: counts["skipped_busy"] >= 1, timeout=10)
        assert scheduler.counts()["runs"] == 0
        scheduler.stop()
        lock.release()
        lock.acquire("upload")
        scheduler.start(lambda: "scheduled", FAST)
        assert not scheduler.wait_for_runs(1, timeout=FAST * 3)  # waiting for the upload, not skipping
        skipped = scheduler.counts()["skipped_busy"]
        lock.release()
        assert scheduler.wait_for_runs(1, timeout=10) and scheduler.counts()["skipped_busy"] == skipped
    finally:
        if lock.holder is not None:  # a failed assertion must not leave the job waiting forever
            lock.release()
        scheduler.shutdown(wait=True)
