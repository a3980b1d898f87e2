"""The OpenAPI 3.1 document of `/api/telemetry` (served at `GET /openapi.json`).

Response and request bodies come from the same msgspec Structs the code
encodes and decodes (`msgspec.json.schema_components`), so the document
cannot drift from the wire format; `tests/backend/test_api_openapi.py`
checks that every route in the app is here and every route here exists.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

from branchpy_telemetry.client.schema import SCHEMA_VERSION, TelemetryPackage

from .sinks import base

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


_TIME = {"type": "string"}
_RANGE = [
    _param("from", _TIME, "start: a window back from now (24h, 7d) or an ISO-8601 time"),
    _param("to", _TIME, "end (exclusive): a window back from now or an ISO-8601 time"),
]
_ERRORS = {
    "400": "bad parameter, bad JSON or an incomplete body",
    "401": "no API key, or an unknown / revoked one",
    "403": "the key's scope does not allow this endpoint",
    "429": "rate limited; see Retry-After",
    "503": "the primary sink is unavailable",
}


def _routes() -> list[tuple[str, str, str, str | None, list[dict], object, dict[str, str]]]:
    """(path, method, summary, scope, parameters, 2xx body type, extra error statuses)."""
    from branchpy_telemetry.client.catalog import CatalogDescription

    from .api.meta import HealthReport
    from .api.queries import SloReport
    from .api.upload import UploadReceipt

    cats = {"type": "string", "enum": ["command", "feature", "error", "performance", "session", "system"]}
    srcs = {"type": "string", "enum": ["cli", "extension", "daemon"]}
    text = {"type": "string", "maxLength": 200}
    return [
        ("/health", "get", "Readiness: sinks reachable, limits advertised", None, [], HealthReport, {}),
        ("/upload", "post", "Upload one telemetry package", "ingest", [], UploadReceipt,
         {"413": "body over max_upload_bytes (after gzip decompression too)",
          "415": "Content-Type is not application/json, or an unsupported Content-Encoding",
          "422": "schema_invalid (details.path), privacy_violation (details: [{pointer, rule}]) "
                 "or invalid_package (details.pointer)"}),
        ("/stats", "get", "Totals for the dashboard cards", "read", [], base.Stats, {}),
        ("/events", "get", "Stored events, newest first", "read", [
            _param("category", cats, "filter"), _param("source", srcs, "filter"),
            _param("name", text, "filter"), _param("status", text, "filter"),
            _param("session_id", text, "filter"), *_RANGE,
            _param("page", {"type": "integer", "minimum": 1, "default": 1}, "page number"),
            _param("per_page", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "page size"),
        ], base.EventPage, {}),
        ("/aggregate/category", "get", "Event counts per category", "read", _RANGE, list[base.KeyCount], {}),
        ("/aggregate/source", "get", "Event counts per source", "read", _RANGE, list[base.KeyCount], {}),
        ("/aggregate/timeline", "get", "Events and errors per time bucket", "read", [
            _param("bucket", {"type": "string", "enum": ["hour", "day"], "default": "hour"}, "bucket size"),
            *_RANGE], list[base.TimelineBucket], {}),
        ("/errors/recent", "get", "Latest hashed error groups", "read", [
            _param("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 20}, "how many"),
        ], list[base.RecentError], {}),
        ("/errors/slo", "get", "Success rate and p95 latency against the SLO targets", "read", _RANGE,
         SloReport, {}),
        ("/sessions", "get", "Session analytics", "read", [
            _param("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "rows"),
            *_RANGE], base.SessionsSummary, {}),
        ("/schema", "get", "The package JSON Schema (v1.0.0)", "read", [], dict, {}),
        ("/catalog", "get", "The event catalog this server stores by (names, descriptions, attrs, expiry)",
         "read", [], CatalogDescription, {}),
        ("/openapi.json", "get", "This document", "read", [], dict, {}),
    ]


@cache
def build_openapi() -> dict:
    routes = _routes()
    types = [TelemetryPackage, ErrorEnvelope] + [r[5] for r in routes if r[5] is not dict]
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    by_type = dict(zip(types, schemas, strict=True))
    error_ref = {"$ref": REF.format(name="ErrorEnvelope")}
    paths: dict[str, dict] = {}
    for path, method, summary, scope, params, body_type, extra in routes:
        ok_status = "201" if method == "post" else "200"
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


def _operation_id(method: str, path: str) -> str:
    return method + "".join(p.capitalize() for p in path.replace(".", "_").replace("-", "_").split("/") if p)
