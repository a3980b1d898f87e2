"""The OpenAPI 3.1 document of `/api/telemetry` (served at `GET /openapi.json`).

Response and request bodies come from the same msgspec Structs the code
encodes and decodes (`msgspec.json.schema_components`), and the enums, limits
and error codes from the constants the API enforces, so the document cannot
drift from the wire format; `tests/backend/test_api_openapi.py` checks that
every route in the app is here and every route here exists.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

from branchpy_telemetry.backend.api.params import MAX_TEXT_PARAM, RFC3339_REGEX, WINDOW_REGEX
from branchpy_telemetry.backend.errors import (
    JsonTooDeepError,
    LimitExceededError,
    PrivacyViolationError,
    SchemaInvalidError,
)
from branchpy_telemetry.backend.sinks import base
from branchpy_telemetry.client.contracts.event import CATEGORIES, SOURCES
from branchpy_telemetry.client.contracts.limits import (
    MAX_ATTR_KEY_LENGTH,
    MAX_ATTRS_PER_EVENT,
    MAX_JSON_DEPTH,
)
from branchpy_telemetry.client.contracts.schema import SCHEMA_VERSION, TelemetryPackage

REF = "#/components/schemas/{name}"


class ErrorBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    code: str
    message: str
    hint: str | None = None
    details: Any = None


class ErrorEnvelope(msgspec.Struct):
    error: ErrorBody


def _param(name: str, schema: dict, description: str, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


_TIME = {"anyOf": [{"type": "string", "format": "date-time", "pattern": RFC3339_REGEX},
                   {"type": "string", "pattern": WINDOW_REGEX}],
         "examples": ["2026-11-28T00:00:00Z", "2026-11-28T01:00:00.5+01:00", "24h", "7d", "90m"]}
_TIME_TEXT = ("an RFC 3339 date-time with `Z` or an offset (converted to UTC), e.g. 2026-11-28T00:00:00Z; "
              "or a window back from now: a number and a unit `ms`, `s`, `m`, `h`, `d` or `w`, e.g. 24h, 7d")
_RANGE = [
    _param("from", _TIME, f"start (inclusive): {_TIME_TEXT}"),
    _param("to", _TIME, f"end (exclusive): {_TIME_TEXT}"),
]
# Every timestamp the API sends or receives, by schema component: RFC 3339 date-times in UTC.
TIMESTAMP_FIELDS: dict[str, tuple[str, ...]] = {
    "TelemetryPackage": ("export_timestamp",),
    "Summary": ("window_from", "window_to", "first_event_ts", "last_event_ts"),
    "SanitizedEvent": ("ts",),
    "ErrorSample": ("first_seen", "last_seen"),
    "StoredEvent": ("ts",),
    "Stats": ("last_upload",),
    "TimelineBucket": ("bucket",),
    "RecentError": ("last_seen", "first_seen"),
    "NameReport": ("window_from", "window_to", "previous_from", "previous_to"),
    "VersionDay": ("bucket",),
    "SessionRow": ("first_ts", "last_ts"),
    "SloReport": ("window_from", "window_to"),
}
_TS_DESCRIPTION = "RFC 3339 date-time in UTC, as the exporter writes it: 2026-11-28T01:02:03.456Z"
_ERRORS = {
    "400": f"bad parameter, bad JSON, JSON nested deeper than {MAX_JSON_DEPTH} levels "
           f"({JsonTooDeepError.code}) or an incomplete body",
    "401": "no API key, or an unknown / revoked one",
    "403": "the key's scope does not allow this endpoint",
    "429": "rate limited (per key, or failed authentications per client address); see Retry-After",
    "503": "the primary sink is unavailable; see Retry-After",
}


def _routes() -> list[tuple[str, str, str, str | None, list[dict], object, dict[str, str]]]:
    """(path, method, summary, scope, parameters, 2xx body type, extra error statuses)."""
    from branchpy_telemetry.backend.api.meta import HealthReport
    from branchpy_telemetry.backend.api.queries import (
        EVENTS_PER_PAGE,
        MAX_PAGE,
        MAX_PER_PAGE,
        RECENT_ERRORS_LIMIT,
        SESSIONS_LIMIT,
        TIMELINE_BUCKETS,
    )
    from branchpy_telemetry.backend.api.upload import UploadReceipt
    from branchpy_telemetry.backend.breakdowns import KeyUsage, NameReport, PlatformReport, VersionDay
    from branchpy_telemetry.backend.slo import SloReport
    from branchpy_telemetry.client.contracts.catalog import CatalogDescription

    cats = {"type": "string", "enum": list(CATEGORIES)}
    srcs = {"type": "string", "enum": list(SOURCES)}
    text = {"type": "string", "maxLength": MAX_TEXT_PARAM}
    buckets = {"type": "string", "enum": list(TIMELINE_BUCKETS), "default": TIMELINE_BUCKETS[0]}

    def count(default: int, maximum: int = MAX_PER_PAGE) -> dict:
        return {"type": "integer", "minimum": 1, "maximum": maximum, "default": default}

    filters = [*_RANGE, _param("category", cats, "only events of this category"),
               _param("source", srcs, "only events from this source"),
               _param("name", text, "only this command or feature"),
               _param("version", text, "only events of packages from this branchpy_version"),
               _param("os", text, "only events of packages from this OS"),
               _param("python", text, "only events of packages from this Python version")]
    return [
        ("/health", "get", "Readiness: sinks reachable, limits advertised", None, [], HealthReport, {}),
        ("/upload", "post", "Upload one telemetry package", "ingest", [], UploadReceipt,
         {"413": "body over max_upload_bytes (after gzip decompression too)",
          "415": "Content-Type is not application/json, or an unsupported Content-Encoding",
          "422": f"{SchemaInvalidError.code} (details.path), {PrivacyViolationError.code} (details: "
                 f"[{{pointer, rule}}]), {LimitExceededError.code} (details: [{{pointer, rule, limit}}]: "
                 f"more than {MAX_ATTRS_PER_EVENT} attrs on an event, or an attr key over "
                 f"{MAX_ATTR_KEY_LENGTH} characters) or {base.InvalidPackageError.code} (details.pointer)"}),
        ("/stats", "get", "Totals for the dashboard cards: all time, or over a range and filters (events, "
                          "errors: every filter; installs: range, version, os, python; sessions, packages "
                          "and last upload: the range only)", "read", filters, base.Stats, {}),
        ("/events", "get", "Stored events, newest first", "read", [
            _param("category", cats, "filter"), _param("source", srcs, "filter"),
            _param("name", text, "filter"), _param("status", text, "filter"),
            _param("session_id", text, "filter"),
            _param("error_hash", text, "the events of one error group"),
            *_RANGE,
            _param("page", count(1, MAX_PAGE), "page number"),
            _param("per_page", count(EVENTS_PER_PAGE), "page size"),
        ], base.EventPage, {}),
        ("/aggregate/category", "get", "Event counts per category", "read", filters, list[base.KeyCount], {}),
        ("/aggregate/source", "get", "Event counts per source", "read", filters, list[base.KeyCount], {}),
        ("/aggregate/timeline", "get", "Events and errors per time bucket (empty buckets left out)", "read", [
            _param("bucket", buckets, "bucket size"),
            *filters], list[base.TimelineBucket], {}),
        ("/aggregate/name", "get", "Per command or feature: events, errors, error rate (errors over events "
                                   "that reported a status), p50/p95/max duration, and the same over the "
                                   "previous period of equal length. p50/p95 are per command over every "
                                   "source and platform", "read", filters, NameReport, {}),
        ("/aggregate/version", "get", "Events and installs per branchpy_version (installs: distinct over the "
                                      "UTC days the range overlaps; under the version and platform filters "
                                      "only)", "read", filters, list[KeyUsage], {}),
        ("/aggregate/version/timeline", "get", "Events and installs per branchpy_version per UTC day", "read",
         filters, list[VersionDay], {}),
        ("/aggregate/platform", "get", "Events and installs per OS and per Python version", "read", filters,
         PlatformReport, {}),
        ("/errors/recent", "get", "Error groups, most recently seen first: all time, or seen in a range "
                                  "(with first seen, type and the commands affected; the category and name "
                                  "filters apply)", "read", [
            _param("limit", count(RECENT_ERRORS_LIMIT), "how many"),
            *filters], list[base.RecentError], {}),
        ("/errors/slo", "get", "Success rate and p95 latency against the SLO targets, overall and per "
                               "command", "read", filters, SloReport, {}),
        ("/sessions", "get", "Session analytics", "read", [
            _param("limit", count(SESSIONS_LIMIT), "rows"),
            *_RANGE], base.SessionsSummary, {}),
        ("/metrics", "get", "Write counters per sink (Prometheus text format 0.0.4)", "read", [], str, {}),
        ("/schema", "get", f"The package JSON Schema (v{SCHEMA_VERSION})", "read", [], dict, {}),
        ("/catalog", "get", "The event catalog this server stores by (names, descriptions, attrs, expiry)",
         "read", [], CatalogDescription, {}),
        ("/openapi.json", "get", "This document", "read", [], dict, {}),
    ]


@cache
def build_openapi() -> dict:
    routes = _routes()
    types = [TelemetryPackage, ErrorEnvelope] + [r[5] for r in routes if r[5] not in (dict, str)]
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    mark_timestamps(components)
    by_type = dict(zip(types, schemas, strict=True))
    error_ref = {"$ref": REF.format(name="ErrorEnvelope")}
    paths: dict[str, dict] = {}
    for path, method, summary, scope, params, body_type, extra in routes:
        ok_status = "201" if method == "post" else "200"
        if body_type is str:  # plain text (the metrics exposition)
            body_schema = {"type": "string"}
            content = {"text/plain": {"schema": body_schema}}
        else:
            body_schema = {"type": "object"} if body_type is dict else by_type[body_type]
            content = {"application/json": {"schema": body_schema}}
        responses = {ok_status: {"description": "success", "content": content}}
        if path == "/upload":
            responses["200"] = {"description": "the package was already stored: duplicate=true, no new rows",
                                "content": {"application/json": {"schema": body_schema}}}
        statuses = dict(_ERRORS) if scope else {"503": "the primary sink is unavailable"}
        statuses.update(extra)
        for status, description in sorted(statuses.items()):
            responses[status] = {"description": description,
                                 "content": {"application/json": {"schema": error_ref}}}
        operation: dict = {"summary": summary, "operationId": _operation_id(method, path),
                           "parameters": list(params), "responses": responses}
        if scope:
            operation["security"] = [{"apiKey": []}, {"bearer": []}]
            operation["description"] = f"Needs a key with scope `{scope}` (or `admin`)."
        else:
            operation["security"] = []
        if path == "/upload":
            operation["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": by_type[TelemetryPackage]}},
                "description": "UTF-8 JSON; may be sent with Content-Encoding: gzip"}
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "BranchPy telemetry ingestion API", "version": SCHEMA_VERSION},
        "servers": [{"url": "/api/telemetry"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }


def mark_timestamps(components: dict) -> None:
    """Give every timestamp field its format (msgspec only knows they are strings)."""
    for name, fields in TIMESTAMP_FIELDS.items():
        properties = components[name]["properties"]
        for field in fields:
            prop = properties[field]
            for branch in prop.get("anyOf", [prop]):
                if branch.get("type") == "string":
                    branch["format"] = "date-time"
            prop["description"] = _TS_DESCRIPTION


def _operation_id(method: str, path: str) -> str:
    return method + "".join(p.capitalize() for p in path.replace(".", "_").replace("-", "_").split("/") if p)
