"""Write transactions that lose a race run again: a policy, not luck.

A write transaction can fail because of a concurrent writer while nothing
is wrong with it. The causes a sink reports (`RetryableWriteError.cause`):

- `conflict`: MariaDB/MySQL error 1213 (ER_LOCK_DEADLOCK). A local deadlock,
  and on a Galera cluster also a certification failure (two nodes committed
  overlapping write sets; the later one is rolled back) or a brute-force
  abort (a replicated write set took a row a local transaction held).
- `lock_wait_timeout`: 1205, a row lock held past innodb_lock_wait_timeout.
- `duplicate_key_race`: 1062, a concurrent upload inserted the same new row
  first (an event, a session, an install); the retry sees it.
- `node_not_ready`: 1047 (ER_UNKNOWN_COM_ERROR), a Galera node that is
  joining, donating or outside the primary component.

The whole transaction is rolled back and run again after a full-jitter
backoff, uniform in [0, min(cap, base * 2**(attempt - 1))], as long as the
next attempt starts before the deadline (measured from the first attempt).
Then the write gives up with SinkBusyError, which the API answers with 503
and `Retry-After`. Every rolled-back attempt, every commit and every give-up
is counted per operation (and cause) in `WriteStats`, which
`GET /api/telemetry/metrics` exposes. The clock, the sleep and the random
source are arguments, so the policy is tested without waiting.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

import msgspec
import structlog

from branchpy_telemetry.backend.sinks.base import SinkBusyError

log = structlog.get_logger("backend.sinks")
T = TypeVar("T")

CAUSES = ("conflict", "lock_wait_timeout", "duplicate_key_race", "node_not_ready")


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    deadline_s: float = 10.0  # from the first attempt; no attempt starts after it
    base_s: float = 0.02
    cap_s: float = 0.5

    def __post_init__(self) -> None:
        if self.deadline_s < 0 or self.base_s < 0 or self.cap_s < 0:
            raise ValueError("retry deadline, base and cap must be >= 0")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1 = the first)."""
        return rng.uniform(0.0, min(self.cap_s, self.base_s * 2.0 ** min(attempt - 1, 60)))

    @property
    def retry_after_s(self) -> int:
        """What a client that got the 503 should wait: a few backoff ceilings, at least 1 s."""
        return max(1, math.ceil(4 * self.cap_s))


class RetryableWriteError(Exception):
    """Raised by a sink for a driver error that a new attempt may not hit; `cause` is one of CAUSES."""

    def __init__(self, cause: str, detail: str):
        super().__init__(f"{cause}: {detail}")
        self.cause = cause


class WriteStats:
    """Counters of one sink's write transactions (thread-safe, monotonic)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.commits: Counter[str] = Counter()  # op -> committed transactions
        self.conflicts: Counter[tuple[str, str]] = Counter()  # (op, cause) -> rolled-back attempts
        self.exhausted: Counter[str] = Counter()  # op -> writes that gave up at the deadline
        self.wait_s: Counter[str] = Counter()  # op -> seconds spent in backoff

    def record_commit(self, op: str) -> None:
        with self._lock:
            self.commits[op] += 1

    def record_conflict(self, op: str, cause: str) -> None:
        with self._lock:
            self.conflicts[(op, cause)] += 1

    def record_wait(self, op: str, seconds: float) -> None:
        with self._lock:
            self.wait_s[op] += seconds

    def record_exhausted(self, op: str) -> None:
        with self._lock:
            self.exhausted[op] += 1

    def snapshot(self) -> dict[str, dict]:
        with self._lock:
            return {"commits": dict(self.commits), "conflicts": dict(self.conflicts),
                    "exhausted": dict(self.exhausted), "wait_s": dict(self.wait_s)}


class WriteRetrier:
    def __init__(self, policy: RetryPolicy | None = None, stats: WriteStats | None = None, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None):
        self.policy = policy or RetryPolicy()
        self.stats = stats or WriteStats()
        self._clock, self._sleep = clock, sleep
        self._rng = rng or random.Random()

    def run(self, op: str, attempt: Callable[[], T], *, sink: str = "") -> T:
        """`attempt()` until it returns (committed) or raises anything but RetryableWriteError;
        SinkBusyError once the deadline leaves no room for another attempt."""
        deadline = self._clock() + self.policy.deadline_s
        number = 0
        while True:
            number += 1
            try:
                result = attempt()
            except RetryableWriteError as exc:
                self.stats.record_conflict(op, exc.cause)
                delay = self.policy.backoff(number, self._rng)
                if self._clock() + delay >= deadline:
                    self.stats.record_exhausted(op)
                    log.warning("sink.retries_exhausted", kind=sink, op=op, attempts=number, cause=exc.cause)
                    raise SinkBusyError(
                        f"{sink or 'the'} sink: {op} kept conflicting with concurrent writers for "
                        f"{self.policy.deadline_s:g}s ({number} attempts, last: {exc.cause})",
                        retry_after_s=self.policy.retry_after_s) from exc
                log.info("sink.retry", kind=sink, op=op, attempt=number, cause=exc.cause,
                         delay_ms=round(delay * 1000, 1))
                self._sleep(delay)
                self.stats.record_wait(op, delay)
                continue
            self.stats.record_commit(op)
            return result
