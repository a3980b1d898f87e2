"""The event record: one JSONL line in a spool (the CLI's or the VS Code extension's)."""

from __future__ import annotations

import os
import time
from typing import Annotated, Any, Literal

import msgspec

EVENT_VERSION = 1
Category = Literal["command", "feature", "error", "performance", "session", "system"]
Source = Literal["cli", "extension", "daemon"]
CATEGORIES: tuple[str, ...] = ("command", "feature", "error", "performance", "session", "system")
SOURCES: tuple[str, ...] = ("cli", "extension", "daemon")
# A duration is a measurement: not negative, and at most ~31.7 years. Larger
# numbers are not durations, and summing them per command could overflow a
# float; a line carrying one fails to validate (skipped and counted).
MAX_DURATION_MS = 1e12
DurationMs = Annotated[float, msgspec.Meta(ge=0, le=MAX_DURATION_MS)]


class ErrorInfo(msgspec.Struct, kw_only=True, omit_defaults=True):
    code: str | None = None
    type: str | None = None
    message: str | None = None  # raw text: never leaves the machine


class EventRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One event: one JSONL line. A line that does not decode is skipped and counted, never fatal."""

    v: int = EVENT_VERSION
    event_id: str
    ts: str
    category: Category
    source: Source
    name: str
    duration_ms: DurationMs | None = None
    status: str | None = None
    session_id: str | None = None
    correlation_id: str | None = None
    error: ErrorInfo | None = None
    attrs: dict[str, Any] | None = None


def new_event_id() -> str:
    """A UUIDv7 (RFC 9562): time-ordered, so ids sort like the events."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


event_encoder = msgspec.json.Encoder()
event_decoder = msgspec.json.Decoder(EventRecord)
