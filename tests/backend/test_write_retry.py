"""The write retry policy (write_retry.py) with an injected clock: a write that
loses races runs again after full-jitter backoff until it commits or the
deadline is spent, never starts an attempt past the deadline, counts every
conflict, and gives up with SinkBusyError (503 + Retry-After) only then."""

from __future__ import annotations

import random

import pytest

from branchpy_telemetry.backend.sinks.base import SinkBusyError, SinkError
from branchpy_telemetry.backend.sinks.write_retry import (
    RetryableWriteError,
    RetryPolicy,
    WriteRetrier,
)


class FakeClock:
    """Time moves only when the code sleeps or an attempt takes `attempt_s`."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class MaxRandom(random.Random):
    """uniform(a, b) -> b: every backoff at its ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


def make_retrier(clock: FakeClock, policy: RetryPolicy, rng: random.Random | None = None) -> WriteRetrier:
    return WriteRetrier(policy, clock=clock, sleep=clock.sleep, rng=rng or random.Random(7))


def flaky(failures: list[str], clock: FakeClock, attempt_s: float = 0.0):
    """An attempt that fails with each cause in turn, then returns 'done'; records its start times."""
    starts: list[float] = []

    def attempt():
        starts.append(clock.now)
        clock.now += attempt_s
        if len(starts) <= len(failures):
            raise RetryableWriteError(failures[len(starts) - 1], "test")
        return "done"

    attempt.starts = starts
    return attempt


def test_a_write_that_loses_two_races_commits_on_the_third_attempt_and_is_counted():
    clock = FakeClock()
    retrier = make_retrier(clock, RetryPolicy(deadline_s=10, base_s=0.02, cap_s=0.5))
    attempt = flaky(["conflict", "node_not_ready"], clock)
    assert retrier.run("store_package", attempt) == "done"
    assert len(attempt.starts) == 3
    stats = retrier.stats.snapshot()
    assert stats["commits"] == {"store_package": 1}
    assert stats["conflicts"] == {("store_package", "conflict"): 1, ("store_package", "node_not_ready"): 1}
    assert stats["exhausted"] == {}
    assert stats["wait_s"]["store_package"] == pytest.approx(sum(clock.sleeps))


def test_backoff_is_full_jitter_under_a_doubling_ceiling_capped():
    policy = RetryPolicy(deadline_s=100, base_s=0.02, cap_s=0.15)
    assert [policy.backoff(n, MaxRandom()) for n in range(1, 7)] == [0.02, 0.04, 0.08, 0.15, 0.15, 0.15]
    rng = random.Random(3)
    draws = [policy.backoff(3, rng) for _ in range(2000)]
    assert min(draws) >= 0.0 and max(draws) <= 0.08
    assert min(draws) < 0.01 and max(draws) > 0.07  # the whole interval, from zero: full jitter


def test_the_deadline_is_spent_then_sink_busy_with_retry_after():
    clock = FakeClock()
    policy = RetryPolicy(deadline_s=2.0, base_s=0.05, cap_s=0.4)
    retrier = make_retrier(clock, policy, MaxRandom())
    attempt = flaky(["conflict"] * 1000, clock, attempt_s=0.03)
    started = clock.now
    with pytest.raises(SinkBusyError) as info:
        retrier.run("store_package", attempt, sink="mysql")
    assert isinstance(info.value, SinkError) and info.value.code == "sink_busy"
    assert info.value.retry_after_s == policy.retry_after_s >= 1
    assert "store_package" in str(info.value) and "conflict" in str(info.value)
    assert all(start < started + policy.deadline_s for start in attempt.starts)  # none past the deadline
    assert clock.now - started <= policy.deadline_s + 0.03  # gave up instead of sleeping past it
    assert clock.now - started > policy.deadline_s - policy.cap_s - 0.03  # ...and not much earlier
    stats = retrier.stats.snapshot()
    assert stats["conflicts"] == {("store_package", "conflict"): len(attempt.starts)}
    assert stats["exhausted"] == {"store_package": 1} and stats["commits"] == {}


def test_a_zero_deadline_means_one_attempt():
    clock = FakeClock()
    retrier = make_retrier(clock, RetryPolicy(deadline_s=0))
    attempt = flaky(["lock_wait_timeout"], clock)
    with pytest.raises(SinkBusyError):
        retrier.run("purge", attempt)
    assert len(attempt.starts) == 1 and clock.sleeps == []


def test_any_other_error_is_not_retried_and_not_counted_as_a_conflict():
    clock = FakeClock()
    retrier = make_retrier(clock, RetryPolicy())
    calls = []

    def broken():
        calls.append(1)
        raise SinkError("mysql sink failed during store_package: OperationalError: server gone")

    with pytest.raises(SinkError, match="server gone") as info:
        retrier.run("store_package", broken)
    assert not isinstance(info.value, SinkBusyError)
    assert calls == [1] and clock.sleeps == []
    assert retrier.stats.snapshot() == {"commits": {}, "conflicts": {}, "exhausted": {}, "wait_s": {}}


def test_a_policy_with_a_negative_setting_is_refused():
    for bad in (dict(deadline_s=-1), dict(base_s=-0.1), dict(cap_s=-2)):
        with pytest.raises(ValueError, match=">= 0"):
            RetryPolicy(**bad)
