"""The event record: one JSONL line in a spool (the CLI's or the VS Code extension's)."""

from __future__ import annotations

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


event_encoder = msgspec.json.Encoder()
event_decoder = msgspec.json.Decoder(EventRecord)
