"""The upload's fast path (one typed decode, the privacy gate on the body bytes,
the collector paused) answers exactly like the step-by-step path."""

from __future__ import annotations

import gc
import threading

import msgspec
import pytest

from branchpy_telemetry.backend.app import create_app
from branchpy_telemetry.backend.settings import BackendSettings
from branchpy_telemetry.backend.sinks.memory import MemorySink
from branchpy_telemetry.client.infra.gc_pause import gc_paused

from .conftest import make_package
from .live_backend import add_keys


@pytest.fixture
def app_client():
    sink = MemorySink()
    keys = add_keys(sink)
    client = create_app(BackendSettings(), sink).test_client()

    def post(body: bytes):
        return client.post("/api/telemetry/upload", data=body,
                           headers={"X-API-Key": keys["ingest"], "Content-Type": "application/json"})
    return post, sink


def test_a_clean_package_is_stored_through_the_fast_path(app_client):
    post, sink = app_client
    response = post(msgspec.json.encode(make_package(30, seed=401)))
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["accepted_events"] == 30
    assert sink.stats().events == 30


def test_a_body_breaking_the_schema_and_a_rule_gets_the_privacy_error(app_client):
    post, sink = app_client
    package = msgspec.to_builtins(make_package(3, seed=402))
    package["summary"]["events"][0]["duration_ms"] = "slow"  # schema
    package["summary"]["events"][1]["name"] = "/home/alice/game/script.rpy"  # privacy
    response = post(msgspec.json.encode(package))
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "privacy_violation"
    assert error["details"] == [{"pointer": "/summary/events/1/name", "rule": "raw_path"}]
    assert "alice" not in response.get_data(as_text=True)
    assert sink.stats().events == 0


@pytest.mark.parametrize(("key", "value", "rule"), [("source_code", "print('s3cr3t')", "content_field"),
                                                   ("client_secret", "s3cr3t-value-123", "secret_field")])
def test_a_schema_valid_body_with_a_content_or_secret_key_in_attrs_is_refused(app_client, key, value, rule):
    post, sink = app_client
    package = msgspec.to_builtins(make_package(3, seed=403))
    package["summary"]["events"][2]["attrs"][key] = value
    response = post(msgspec.json.encode(package))
    assert response.status_code == 422
    assert response.get_json()["error"]["details"] == [{"pointer": "/summary/events/2/attrs", "rule": rule}]
    assert "s3cr3t" not in response.get_data(as_text=True) and sink.stats().events == 0


def test_the_collector_is_back_on_after_nested_and_concurrent_pauses():
    assert gc.isenabled()
    inside = threading.Barrier(4)
    seen: list[bool] = []

    def upload():
        with gc_paused():
            inside.wait(timeout=10)  # all four are inside at once
            seen.append(gc.isenabled())
            inside.wait(timeout=10)

    threads = [threading.Thread(target=upload) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert seen == [False] * 4
    assert gc.isenabled()


def test_the_collector_is_back_on_after_a_failed_upload():
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_host_stays_off():
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
