"""Token buckets per key, driven by an injected clock (no sleeps)."""

from __future__ import annotations

from branchpy_telemetry.backend.ratelimit import TokenBucketLimiter, retry_after_header


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_is_allowed_then_the_next_request_waits_for_a_token():
    clock = FakeClock()
    limiter = TokenBucketLimiter(2.0, 3, clock=clock)
    assert [limiter.acquire("k") for _ in range(3)] == [None, None, None]
    wait = limiter.acquire("k")
    assert wait is not None and abs(wait - 0.5) < 1e-9


def test_tokens_refill_with_time_up_to_the_burst():
    clock = FakeClock()
    limiter = TokenBucketLimiter(1.0, 2, clock=clock)
    limiter.acquire("k"), limiter.acquire("k")
    assert limiter.acquire("k") is not None
    clock.now += 1.0
    assert limiter.acquire("k") is None
    clock.now += 100.0
    assert [limiter.acquire("k") for _ in range(3)][:2] == [None, None]
    assert limiter.acquire("k") is not None


def test_each_key_has_its_own_bucket():
    limiter = TokenBucketLimiter(1.0, 1, clock=FakeClock())
    assert limiter.acquire("a") is None
    assert limiter.acquire("a") is not None
    assert limiter.acquire("b") is None


def test_rate_zero_disables_limiting():
    limiter = TokenBucketLimiter(0, 1, clock=FakeClock())
    assert all(limiter.acquire("k") is None for _ in range(1000))


def test_retry_after_is_whole_seconds_and_never_zero():
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(1.2) == "2"
    assert retry_after_header(3.0) == "3"
