"""Schemathesis-style: requests generated from the OpenAPI document itself, for every
read operation, over a loaded sink. Whatever the parameters (valid, out of range,
of the wrong form, or mixed), the answer is one of the statuses the document lists
for that operation, a 200 body validates against the documented schema, and a 400
names one of the parameters sent. Nothing answers 500."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from branchpy_telemetry.backend.app import create_app
from branchpy_telemetry.backend.auth import generate_key
from branchpy_telemetry.backend.openapi import build_openapi
from branchpy_telemetry.backend.settings import BackendSettings
from branchpy_telemetry.backend.sinks.memory import MemorySink
from branchpy_telemetry.client.contracts.timewindow import format_ts, utcnow

from .conftest import make_package

DOCUMENT = build_openapi()
SKIPPED = {"/health", "/metrics", "/schema", "/openapi.json", "/catalog"}  # no parameters to vary
OPERATIONS = sorted(path for path, ops in DOCUMENT["paths"].items() if "get" in ops and path not in SKIPPED)
JUNK = st.sampled_from(["", " ", "-1", "0", "1e9", "x' OR '1'='1", "null", "%00", "ü", "9" * 30, "24 h",
                        "2026-02-30T00:00:00Z", "\x00"])


def value_strategy(schema: dict) -> st.SearchStrategy[str]:
    """Valid values of a parameter's schema, and values just outside it."""
    if "anyOf" in schema:  # from/to: the documented examples, windows and date-times near now
        now = utcnow()
        return st.one_of(st.sampled_from(schema["examples"]),
                         st.integers(1, 2000).map(lambda h: f"{h}h"),
                         st.integers(-500, 500).map(lambda h: format_ts(now + timedelta(hours=h))))
    if "enum" in schema:
        return st.sampled_from([*schema["enum"], schema["enum"][0].upper(), schema["enum"][0] + "s"])
    if schema.get("type") == "integer":
        lo, hi = schema.get("minimum", 0), schema.get("maximum", 10_000)
        return st.integers(lo - 2, hi + 2).map(str)
    return st.one_of(st.sampled_from(["analyze", "lint", "1.4.0", "linux", "3.11.2", "cli"]),
                     st.text(max_size=schema.get("maxLength", 200) + 5))


def query_strategy(path: str):
    params = DOCUMENT["paths"][path]["get"]["parameters"]
    return st.fixed_dictionaries({}, optional={
        p["name"]: st.one_of(value_strategy(p["schema"]), JUNK) for p in params})


def response_validator(path: str) -> Draft202012Validator:
    schema = DOCUMENT["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    return Draft202012Validator({**schema, "components": DOCUMENT["components"]})


@pytest.fixture(scope="module")
def client_and_key():
    sink = MemorySink()
    now = utcnow()
    for seed in range(3):
        sink.store_package(make_package(200, seed=seed, start=now - timedelta(hours=60 * seed + 30),
                                        step=timedelta(minutes=9)),
                           receipt="sha256:x", body_bytes=1, received_at=now)
    key, record = generate_key("read", None, now)
    sink.add_api_key(record)
    app = create_app(BackendSettings(query_rate_per_s=0), sink)
    return app.test_client(), key


@pytest.mark.parametrize("path", OPERATIONS)
def test_every_generated_request_gets_a_documented_answer(client_and_key, path):
    client, key = client_and_key
    operation = DOCUMENT["paths"][path]["get"]
    documented = set(operation["responses"])
    validator = response_validator(path)
    seen: set[int] = set()

    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(query=query_strategy(path))
    def check(query):
        response = client.get("/api/telemetry" + path, query_string=query, headers={"X-API-Key": key})
        assert str(response.status_code) in documented, (query, response.status_code, response.get_data())
        body = response.get_json()
        seen.add(response.status_code)
        if response.status_code == 200:
            errors = sorted(validator.iter_errors(body), key=str)
            assert not errors, (query, errors[0].message)
        elif response.status_code == 400:
            assert body["error"]["code"] == "bad_parameter"
            assert body["error"]["details"]["parameter"] in query

    check()
    assert {200, 400} <= seen, seen  # the generator reached valid and invalid requests alike


def test_every_read_operation_with_parameters_is_generated():
    assert {"/aggregate/name", "/aggregate/version", "/aggregate/version/timeline", "/aggregate/platform",
            "/stats", "/errors/recent", "/events"} <= set(OPERATIONS)
