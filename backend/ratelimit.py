"""Per-key token buckets: 429 with `Retry-After` when a key runs dry.

A bucket holds up to `burst` tokens and refills at `rate` tokens per
second; each request takes one. The clock is injectable so tests need no
sleeps. At most `max_buckets` are kept (least recently used go first): the
per-key buckets are bounded by the number of keys anyway, the per-address
bucket of failed authentications by this.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class TokenBucketLimiter:
    def __init__(self, rate_per_s: float, burst: int, *, clock: Callable[[], float] = time.monotonic,
                 max_buckets: int = 100_000):
        self.rate = float(rate_per_s)
        self.burst = max(1, int(burst))
        self.max_buckets = max_buckets
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time), LRU order

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def acquire(self, key: str) -> float | None:
        """Take a token for `key`: None when allowed, else the seconds to wait."""
        if not self.enabled:
            return None
        now = self._clock()
        with self._lock:
            tokens = self._tokens(key, now)
            taken = tokens >= 1.0
            self._buckets.pop(key, None)  # re-inserted last: the most recently used
            self._buckets[key] = (tokens - 1.0 if taken else tokens, now)
            if len(self._buckets) > self.max_buckets:
                del self._buckets[next(iter(self._buckets))]
        return None if taken else (1.0 - tokens) / self.rate

    def peek(self, key: str) -> float | None:
        """Like `acquire` without taking a token: None when one is there, else the seconds to wait."""
        if not self.enabled:
            return None
        with self._lock:
            tokens = self._tokens(key, self._clock())
        return None if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _tokens(self, key: str, now: float) -> float:
        """The bucket's tokens now (a key never seen has a full bucket; lock held)."""
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - last) * self.rate)


def retry_after_header(wait_s: float) -> str:
    """Retry-After takes whole seconds; never 0 (that invites a hot loop)."""
    return str(max(1, math.ceil(wait_s)))
