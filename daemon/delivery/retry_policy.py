"""What to do with one upload attempt's answer.

Pure functions: no I/O, the clock and the random source are arguments, so
every rule is testable without a server or a sleep.

- 2xx → ``delivered`` (a 200 carrying ``"duplicate": true`` → ``duplicate``).
- 5xx except 503, 408, network errors and timeouts → ``retry`` (exponential
  backoff with full jitter).
- 429 and 503 → ``throttled`` (honour ``Retry-After``).
- every other 4xx (and 1xx/3xx, which we never follow) → ``rejected``:
  never retried.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import requests

Outcome = Literal["delivered", "duplicate", "retry", "throttled", "rejected"]
OUTCOMES: tuple[Outcome, ...] = ("delivered", "duplicate", "retry", "throttled", "rejected")

# A server asking us to wait longer than this is treated as asking for this long.
MAX_RETRY_AFTER_SECONDS = 3600.0
THROTTLE_STATUSES = frozenset({429, 503})
# A request timeout says nothing about the package: try again.
RETRY_4XX_STATUSES = frozenset({408})
# Rejections that are the package's fault (quarantine it). Others (401, 403,
# 404, 3xx …) are about the credential or the endpoint: the package is fine
# and should stay in the outbox until the user fixes the configuration.
PACKAGE_FAULT_STATUSES = frozenset({400, 409, 413, 415, 422})

# requests exceptions that retrying cannot fix: the URL or a header is wrong.
_NOT_RETRYABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.URLRequired,
)


def classify(status_code: int | None, exc: BaseException | None = None, *,
             duplicate: bool = False) -> Outcome:
    """Map one attempt (an HTTP status, or the exception raised instead) to an outcome."""
    if status_code is None:
        if exc is None:
            raise ValueError("classify() needs a status code or an exception")
        if isinstance(exc, _NOT_RETRYABLE_EXCEPTIONS):
            return "rejected"
        return "retry"  # connection refused/reset, DNS, timeouts, broken chunked bodies …
    if 200 <= status_code < 300:
        return "duplicate" if duplicate else "delivered"
    if status_code in THROTTLE_STATUSES:
        return "throttled"
    if status_code >= 500 or status_code in RETRY_4XX_STATUSES:
        return "retry"
    return "rejected"


def is_package_fault(status_code: int | None) -> bool:
    """Should a rejected package be quarantined (True) or kept for later (False)?

    ``None`` means the package was refused locally (over the size cap, not a
    valid package): that is the package's fault too.
    """
    return status_code is None or status_code in PACKAGE_FAULT_STATUSES


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number `attempt` (1 = first retry).

    Exponential with FULL jitter: uniform in [0, min(cap, base * 2**(attempt-1))].
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if base < 0 or cap < 0:
        raise ValueError("base and cap must be >= 0")
    ceiling = min(cap, base * (2.0 ** min(attempt - 1, 62)))
    return (rng or random).uniform(0.0, ceiling)


def parse_retry_after(value: str | None, now: datetime | None = None, *,
                      max_seconds: float = MAX_RETRY_AFTER_SECONDS) -> float | None:
    """`Retry-After` as seconds from `now`: delta-seconds or an HTTP-date.

    Returns None when absent or unreadable; a date in the past gives 0; a huge
    value is clamped to `max_seconds`.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        now = now or datetime.now(UTC)
        seconds = (when - now).total_seconds()
    return max(0.0, min(seconds, max_seconds))


def next_delay(outcome: Outcome, attempt: int, *, retry_after: float | None, base: float, cap: float,
               rng: random.Random | None = None) -> float:
    """The wait before the next attempt: the server's `Retry-After` when it gave one
    (throttled), else exponential backoff with full jitter."""
    if outcome == "throttled" and retry_after is not None:
        return retry_after
    return backoff_delay(attempt, base, cap, rng)
