"""`ts` and `event_id` for new events, cheap enough for every emit()."""

from __future__ import annotations

import itertools
import os
import time


class EventStamper:
    """`ts` (UTC, ms, `Z`) and a UUIDv7 `event_id` (RFC 9562) from one clock read.

    unix_ts_ms: the clock; rand_a (12 bits): a process-wide counter (RFC 9562 section 6.2,
    method 1); variant + rand_b (62 bits): random, drawn once per process, again in a
    forked child and every time the counter wraps. Two ids with the same random tail
    thus have different counter values, whatever the clock does (NTP steps back).
    The ts and the id prefix are formatted once per millisecond: an event costs one
    counter step and one f-string.
    """

    def __init__(self, clock=time.time_ns) -> None:
        self._clock = clock
        self._cache = (-1, "", "")  # (ms, ts, event-id prefix up to the version digit)
        self._seq = itertools.count()
        self.reseed()

    def reseed(self) -> None:
        r = int.from_bytes(os.urandom(8), "big")
        self._node = f"-{0x8000 | (r >> 48) & 0x3FFF:04x}-{r & 0xFFFFFFFFFFFF:012x}"

    def stamp(self) -> tuple[str, str]:
        ms = self._clock() // 1_000_000
        cached_ms, ts, prefix = self._cache
        if ms != cached_ms:
            sec, milli = divmod(ms, 1000)
            ts = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(sec)) + f"{milli:03d}Z"
            h = f"{ms & 0xFFFFFFFFFFFF:012x}"
            prefix = f"{h[:8]}-{h[8:]}-7"
            self._cache = (ms, ts, prefix)
        seq = next(self._seq) & 0xFFF
        if not seq:
            self.reseed()
        return ts, f"{prefix}{seq:03x}{self._node}"


STAMPER = EventStamper()  # process-wide: one counter and one random tail for every Emitter


def new_event_id() -> str:
    """A fresh UUIDv7 event id (from the process-wide stamper)."""
    return STAMPER.stamp()[1]

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=STAMPER.reseed)  # a child must not reuse our random tail
