"""The OpenAPI document matches the app: every route is documented and every
documented route exists; the document is valid OpenAPI 3.1."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from branchpy_telemetry.backend.app import API_PREFIX, create_app
from branchpy_telemetry.backend.auth import generate_key
from branchpy_telemetry.backend.openapi import build_openapi
from branchpy_telemetry.backend.settings import BackendSettings
from branchpy_telemetry.backend.sinks.memory import MemorySink
from branchpy_telemetry.client.contracts.timewindow import utcnow

IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture
def app():
    return create_app(BackendSettings(), MemorySink())


def app_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(API_PREFIX + "/"):
            for method in rule.methods - IGNORED_METHODS:
                routes.add((rule.rule[len(API_PREFIX):], method.lower()))
    return routes


def documented_routes() -> set[tuple[str, str]]:
    return {(path, method) for path, ops in build_openapi()["paths"].items() for method in ops}


def test_every_api_route_is_documented_and_every_documented_route_exists(app):
    assert app_routes(app) == documented_routes()
    assert ("/upload", "post") in documented_routes() and ("/health", "get") in documented_routes()


def test_the_document_is_valid_openapi_3_1():
    document = build_openapi()
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_bodies_reference_the_msgspec_struct_schemas():
    document = build_openapi()
    schemas = document["components"]["schemas"]
    for name in ("TelemetryPackage", "UploadReceipt", "Stats", "EventPage", "SloReport", "ErrorEnvelope"):
        assert name in schemas
    upload = document["paths"]["/upload"]["post"]
    assert upload["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TelemetryPackage"}
    assert {"200", "201", "400", "401", "403", "413", "415", "422", "429", "503"} <= set(upload["responses"])
    assert set(schemas["UploadReceipt"]["required"]) >= {"package_id", "accepted_events", "duplicate_events",
                                                         "receipt"}
    assert document["paths"]["/health"]["get"]["security"] == []


def test_the_served_document_is_the_built_one(app):
    sink = app.extensions["branchpy_telemetry"].sink
    key, record = generate_key("read", None, utcnow())
    sink.add_api_key(record)
    response = app.test_client().get("/api/telemetry/openapi.json", headers={"X-API-Key": key})
    assert response.status_code == 200
    assert response.get_json() == build_openapi()


TIME_VALUES = ["24h", "7d", "90m", "10s", "500ms", "2w", "1.5h", "2026-11-28T00:00:00Z",
               "2026-11-28T00:00:00.123Z", "2026-11-28T01:00:00+01:00", "2026-11-28t00:00:00z",
               "2026-11-28", "2026-11-28T00:00", "2026-11-28T00:00:00", "yesterday", "24 h", " 24h",
               "-1h", "1e3h", "h", "2026-13-45T12:00:00Z", "2026-11-28T25:00:00Z", "2026-02-30T00:00:00Z",
               "2026-11-28T00:00:00+1:00"]


def test_from_and_to_accept_exactly_what_the_document_specifies(app):
    """The published schema of `from`/`to` and the server's parser agree value by value."""
    from jsonschema import Draft202012Validator

    sink = app.extensions["branchpy_telemetry"].sink
    key, record = generate_key("read", None, utcnow())
    sink.add_api_key(record)
    client = app.test_client()
    parameters = {p["name"]: p for p in build_openapi()["paths"]["/events"]["get"]["parameters"]}
    for name in ("from", "to"):
        validator = Draft202012Validator(parameters[name]["schema"],
                                         format_checker=Draft202012Validator.FORMAT_CHECKER)
        for value in TIME_VALUES:
            documented = validator.is_valid(value)
            status = client.get("/api/telemetry/events", query_string={name: value},
                                headers={"X-API-Key": key}).status_code
            assert (status == 200) == documented, (name, value, status, documented)
        # a trailing newline: ECMA-262's `$` (the document's dialect) rejects it, Python's `$` would not
        assert client.get("/api/telemetry/events", query_string={name: "24h\n"},
                          headers={"X-API-Key": key}).status_code == 400


def test_every_timestamp_field_is_documented_as_an_rfc3339_date_time():
    """Any string property named like a time must carry format date-time (new fields too)."""
    import re

    looks_like_time = re.compile(r"^ts$|_ts$|_at$|timestamp|_seen$|^window_(from|to)$|^last_upload$|^bucket$")
    schemas = build_openapi()["components"]["schemas"]
    found = 0
    for component, schema in schemas.items():
        for field, prop in schema.get("properties", {}).items():
            if not looks_like_time.search(field):
                continue
            strings = [b for b in prop.get("anyOf", [prop]) if b.get("type") == "string"]
            assert strings and all(b.get("format") == "date-time" for b in strings), (component, field, prop)
            found += 1
    assert found >= 15


def test_every_bounded_query_parameter_is_enforced_exactly_as_documented(app):
    """Integer bounds, enums and text lengths in the document are the ones the API applies:
    the documented edge is accepted and one step past it is a 400 `bad_parameter`."""
    sink = app.extensions["branchpy_telemetry"].sink
    key, record = generate_key("read", None, utcnow())
    sink.add_api_key(record)
    client = app.test_client()
    checked = 0
    for path, ops in build_openapi()["paths"].items():
        for param in ops.get("get", {}).get("parameters", []):
            schema = param["schema"]
            if schema.get("type") == "integer":
                assert "maximum" in schema, f"{path} {param['name']}: bounded by the API, not by the document"
                accepted = [schema["minimum"], schema["maximum"], schema["default"]]
                refused = [schema["minimum"] - 1, schema["maximum"] + 1]
            elif "enum" in schema:
                accepted, refused = schema["enum"], ["not-" + schema["enum"][0]]
            elif "maxLength" in schema:
                accepted, refused = ["x" * schema["maxLength"]], ["x" * (schema["maxLength"] + 1)]
            else:
                continue
            for value, ok in [(v, True) for v in accepted] + [(v, False) for v in refused]:
                response = client.get("/api/telemetry" + path, query_string={param["name"]: value},
                                      headers={"X-API-Key": key})
                if ok:
                    assert response.status_code == 200, (path, param["name"], value, response.get_json())
                else:
                    assert response.status_code == 400, (path, param["name"], value)
                    assert response.get_json()["error"]["code"] == "bad_parameter"
                checked += 1
    assert checked > 50


def test_limits_and_codes_in_the_descriptions_are_the_enforced_ones():
    from branchpy_telemetry.backend.errors import JsonTooDeepError, LimitExceededError
    from branchpy_telemetry.client.contracts.limits import (
        MAX_ATTR_KEY_LENGTH,
        MAX_ATTRS_PER_EVENT,
        MAX_JSON_DEPTH,
    )
    from branchpy_telemetry.client.contracts.schema import SCHEMA_VERSION

    upload = build_openapi()["paths"]["/upload"]["post"]["responses"]
    assert f"deeper than {MAX_JSON_DEPTH} levels ({JsonTooDeepError.code})" in upload["400"]["description"]
    assert f"{LimitExceededError.code} (" in upload["422"]["description"]
    assert f"more than {MAX_ATTRS_PER_EVENT} attrs" in upload["422"]["description"]
    assert f"over {MAX_ATTR_KEY_LENGTH} characters" in upload["422"]["description"]
    assert f"(v{SCHEMA_VERSION})" in build_openapi()["paths"]["/schema"]["get"]["summary"]
