"""Per-key token buckets: 429 with `Retry-After` when a key runs dry.

A bucket holds up to `burst` tokens and refills at `rate` tokens per
second; each request takes one. The clock is injectable so tests need no
sleeps. Buckets are only created for authenticated keys, so their number is
bounded by the number of keys.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class TokenBucketLimiter:
    def __init__(self, rate_per_s: float, burst: int, *, clock: Callable[[], float] = time.monotonic):
        self.rate = float(rate_per_s)
        self.burst = max(1, int(burst))
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def acquire(self, key: str) -> float | None:
        """Take a token for `key`: None when allowed, else the seconds to wait."""
        if not self.enabled:
            return None
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return None
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


def retry_after_header(wait_s: float) -> str:
    """Retry-After takes whole seconds; never 0 (that invites a hot loop)."""
    return str(max(1, math.ceil(wait_s)))
