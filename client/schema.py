"""The package: schema v1.0.0 (DESIGN §6), as msgspec Structs.

This is what `export` writes, `preview` shows, `upload` sends and the
backend validates. Structs forbid unknown fields, so nothing unreviewed can
ride along. New fields in a later minor version always get defaults.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from .event import Category, DurationMs, Source

SCHEMA_VERSION = "1.0.0"
SUPPORTED_SCHEMA_VERSIONS: tuple[str, ...] = ("1.0.0",)

# A sum of durations: not negative (each one is at most MAX_DURATION_MS).
TotalMs = Annotated[float, msgspec.Meta(ge=0)]

# attrs that survive sanitizing are flat scalars.
AttrValue = str | int | float | bool | None


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class SanitizedEvent(_Strict, kw_only=True, omit_defaults=True):
    event_id: str
    ts: str
    category: Category
    source: Source
    name: str
    duration_ms: DurationMs | None = None
    status: str | None = None
    session_id: str | None = None
    correlation_id: str | None = None
    error_code: str | None = None
    error_hash: str | None = None
    attrs: dict[str, AttrValue] = {}


class Summary(_Strict, kw_only=True):
    events: list[SanitizedEvent]
    event_count: int
    window_from: str | None = None
    window_to: str | None = None
    first_event_ts: str | None = None
    last_event_ts: str | None = None
    part: int = 1
    last_part: bool = True
    skipped_lines: int = 0  # undecodable or partial lines seen while reading the window
    redactions: dict[str, int] = {}  # rule -> count (never the removed values)


class CommandPerformance(_Strict, kw_only=True):
    count: int
    total_ms: TotalMs
    mean_ms: DurationMs
    p50_ms: DurationMs
    p95_ms: DurationMs
    max_ms: DurationMs


class UsageStatistics(_Strict, kw_only=True):
    commands: dict[str, int] = {}
    features: dict[str, int] = {}
    categories: dict[str, int] = {}
    sources: dict[str, int] = {}
    statuses: dict[str, int] = {}


class ErrorSample(_Strict, kw_only=True):
    error_hash: str  # "sha256:" + hex of the normalized message
    error_code: str | None = None
    error_type: str | None = None
    name: str  # the command or feature it happened in
    count: int
    first_seen: str
    last_seen: str


class Platform(_Strict, kw_only=True):
    os: str
    os_release: str | None = None
    arch: str
    python: str


class TelemetryPackage(_Strict, kw_only=True):
    schema_version: Literal["1.0.0"]
    package_id: str
    export_timestamp: str
    branchpy_version: str
    platform: Platform
    summary: Summary
    performance_metrics: dict[str, CommandPerformance]
    usage_statistics: UsageStatistics
    errors: list[ErrorSample]
    governance_id: str
    correlation_ids: list[str]


package_decoder = msgspec.json.Decoder(TelemetryPackage)
package_encoder = msgspec.json.Encoder()


def decode_package(data: bytes) -> TelemetryPackage:
    """Strict decode; raises msgspec.ValidationError / DecodeError with a `$.path`."""
    return package_decoder.decode(data)


def package_json_schema() -> dict:
    """The published JSON Schema (`branchpy telemetry schema`, `GET /schema`)."""
    schema = msgspec.json.schema(TelemetryPackage)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"BranchPy telemetry package v{SCHEMA_VERSION}"
    return schema
