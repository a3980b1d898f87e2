"""The response policy as pure functions: no server, no sleep."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from branchpy_telemetry.daemon.delivery.retry_policy import (
    MAX_RETRY_AFTER_SECONDS,
    backoff_delay,
    classify,
    is_package_fault,
    next_delay,
    parse_retry_after,
)

NOW = datetime(2026, 11, 28, 3, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_is_delivered(status):
    assert classify(status) == "delivered"


def test_200_with_duplicate_flag_is_duplicate():
    assert classify(200, duplicate=True) == "duplicate"


@pytest.mark.parametrize("status", [500, 502, 504, 599, 408])
def test_5xx_except_503_and_408_are_retried(status):
    assert classify(status) == "retry"


@pytest.mark.parametrize("status", [429, 503])
def test_429_and_503_are_throttled(status):
    assert classify(status) == "throttled"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 415, 422, 301, 302])
def test_other_4xx_and_unfollowed_redirects_are_rejected(status):
    assert classify(status) == "rejected"


@pytest.mark.parametrize("exc", [
    requests.exceptions.ConnectionError("refused"),
    requests.exceptions.ConnectTimeout("connect"),
    requests.exceptions.ReadTimeout("read"),
    requests.exceptions.ChunkedEncodingError("torn"),
    OSError("reset"),
])
def test_network_errors_and_timeouts_are_retried(exc):
    assert classify(None, exc) == "retry"


@pytest.mark.parametrize("exc", [
    requests.exceptions.InvalidURL("x"), requests.exceptions.MissingSchema("x"),
    requests.exceptions.InvalidSchema("x"),
])
def test_a_malformed_endpoint_is_rejected_not_retried(exc):
    assert classify(None, exc) == "rejected"


def test_classify_without_status_or_exception_is_a_programming_error():
    with pytest.raises(ValueError):
        classify(None, None)


def test_package_faults_quarantine_but_auth_and_endpoint_errors_do_not():
    assert all(is_package_fault(s) for s in (None, 400, 413, 415, 422))
    assert not any(is_package_fault(s) for s in (401, 403, 404, 405))


def test_backoff_uses_full_jitter_between_zero_and_the_exponential_ceiling():
    rng = random.Random(7)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (10, 30.0), (200, 30.0)]:
        samples = [backoff_delay(attempt, 0.5, 30.0, rng) for _ in range(400)]
        assert all(0.0 <= s <= ceiling for s in samples)
        # full jitter: spread over the whole range, not clustered at the top
        assert min(samples) < ceiling * 0.1 and max(samples) > ceiling * 0.9


def test_backoff_is_deterministic_with_a_seeded_rng():
    assert backoff_delay(3, 1.0, 60.0, random.Random(1)) == backoff_delay(3, 1.0, 60.0, random.Random(1))


def test_backoff_rejects_attempt_zero():
    with pytest.raises(ValueError):
        backoff_delay(0, 1.0, 10.0)


def test_retry_after_delta_seconds():
    assert parse_retry_after("2", NOW) == 2.0
    assert parse_retry_after(" 120 ", NOW) == 120.0


def test_retry_after_http_date_is_relative_to_the_injected_clock():
    header = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(header, NOW) == pytest.approx(90.0)


def test_retry_after_date_in_the_past_means_now():
    header = format_datetime(NOW - timedelta(minutes=5), usegmt=True)
    assert parse_retry_after(header, NOW) == 0.0


def test_retry_after_is_clamped_to_a_sane_maximum():
    assert parse_retry_after("999999999", NOW) == MAX_RETRY_AFTER_SECONDS
    far = format_datetime(NOW + timedelta(days=30), usegmt=True)
    assert parse_retry_after(far, NOW) == MAX_RETRY_AFTER_SECONDS


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "Mon, 99 Foo 2026"])
def test_unreadable_retry_after_is_none(value):
    assert parse_retry_after(value, NOW) is None


def test_next_delay_prefers_the_servers_retry_after_when_throttled():
    assert next_delay("throttled", 1, retry_after=7.0, base=0.1, cap=1.0) == 7.0
    assert 0.0 <= next_delay("throttled", 1, retry_after=None, base=0.1, cap=1.0) <= 0.1
    assert 0.0 <= next_delay("retry", 2, retry_after=7.0, base=0.1, cap=1.0) <= 0.2
