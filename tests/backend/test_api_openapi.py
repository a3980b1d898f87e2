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
from branchpy_telemetry.client.timewindow import utcnow

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
