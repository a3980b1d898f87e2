"""The package: schema v1.0.0, as msgspec Structs.

This is what `export` writes, `preview` shows, `upload` sends and the
backend validates. Structs forbid unknown fields, so nothing unreviewed can
ride along, and every field the system writes itself has its fixed format
(`fixed_formats.py`), checked while decoding. New fields in a later minor
version always get defaults.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from branchpy_telemetry.client.contracts.event import Category, DurationMs, Source
from branchpy_telemetry.client.contracts.fixed_formats import (
    Arch,
    CatalogId,
    CatalogRevision,
    ErrorHash,
    ErrorType,
    OsName,
    OsRelease,
    RefId,
    Sha256Hex,
    Status,
    Timestamp,
    Uuid,
    Version,
)

SCHEMA_VERSION = "1.0.0"
SUPPORTED_SCHEMA_VERSIONS: tuple[str, ...] = ("1.0.0",)

# A sum of durations: not negative (each one is at most MAX_DURATION_MS).
TotalMs = Annotated[float, msgspec.Meta(ge=0)]

# attrs that survive sanitizing are flat scalars.
AttrValue = str | int | float | bool | None


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class SanitizedEvent(_Strict, kw_only=True, omit_defaults=True):
    event_id: Uuid
    ts: Timestamp
    category: Category
    source: Source
    name: str
    duration_ms: DurationMs | None = None
    status: Status | None = None
    session_id: RefId | None = None
    correlation_id: RefId | None = None
    error_code: str | None = None
    error_hash: ErrorHash | None = None
    attrs: dict[str, AttrValue] = {}


class CatalogRef(_Strict, kw_only=True):
    """Which catalog decided what this package may hold."""

    id: CatalogId
    revision: CatalogRevision
    sha256: Sha256Hex


class Summary(_Strict, kw_only=True):
    events: list[SanitizedEvent]
    event_count: int
    window_from: Timestamp | None = None
    window_to: Timestamp | None = None
    first_event_ts: Timestamp | None = None
    last_event_ts: Timestamp | None = None
    part: int = 1
    last_part: bool = True
    skipped_lines: int = 0  # undecodable or partial lines seen while reading the window
    redactions: dict[str, int] = {}  # rule -> count (never the removed values)
    catalog: CatalogRef | None = None


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
    error_hash: ErrorHash  # "sha256:" + hex of the message template
    error_code: str | None = None
    error_type: ErrorType | None = None
    name: str  # the command or feature it happened in
    count: int
    first_seen: Timestamp
    last_seen: Timestamp


class Platform(_Strict, kw_only=True):
    os: OsName
    os_release: OsRelease | None = None
    arch: Arch
    python: Version


class TelemetryPackage(_Strict, kw_only=True):
    schema_version: Literal["1.0.0"]
    package_id: Uuid
    export_timestamp: Timestamp
    branchpy_version: Version
    platform: Platform
    summary: Summary
    performance_metrics: dict[str, CommandPerformance]
    usage_statistics: UsageStatistics
    errors: list[ErrorSample]
    governance_id: Uuid
    correlation_ids: list[RefId]


# Every field name the schema has: the only mapping keys a server-side finding may spell.
SCHEMA_FIELD_NAMES: frozenset[str] = frozenset().union(*(
    s.__struct_fields__ for s in (TelemetryPackage, Summary, SanitizedEvent, CatalogRef, CommandPerformance,
                                  UsageStatistics, ErrorSample, Platform)))
# Mappings whose keys a sender chooses (names, attrs keys, rules): findings inside point at the mapping.
FREE_KEY_MAPPINGS: frozenset[str] = frozenset({"attrs", "performance_metrics", "commands", "features",
                                               "categories", "sources", "statuses", "redactions"})

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
