"""`GET /api/telemetry/metrics`: each SQL sink's write counters in the Prometheus
text format, read back with Prometheus' own parser; members of a composite
by the names /health gives them; the write settings reach every member."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from branchpy_telemetry.backend.app import create_app, open_configured_sink
from branchpy_telemetry.backend.auth import generate_key
from branchpy_telemetry.backend.metrics_text import FAMILIES, render_metrics
from branchpy_telemetry.backend.settings import load_backend_settings
from branchpy_telemetry.backend.sinks.composite import CompositeSink
from branchpy_telemetry.backend.sinks.memory import MemorySink
from branchpy_telemetry.backend.sinks.sqlite import LocalSQLiteSink
from branchpy_telemetry.client.contracts.errors import ConfigError
from branchpy_telemetry.client.contracts.timewindow import utcnow

from ..polling import wait_until
from .conftest import make_package

NOW = datetime(2026, 11, 28, tzinfo=UTC)


def families(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_every_family_is_declared_and_parses_with_no_sql_sink():
    text = render_metrics(MemorySink())
    assert text.endswith("\n")
    parsed = families(text)
    for name, kind, _ in FAMILIES:
        assert f"# TYPE {name} {kind}" in text
        assert parsed[name.removesuffix("_total")] == []  # a memory sink has no transactions


def test_a_composite_reports_each_sql_member_by_its_health_name(tmp_path):
    sink = CompositeSink([LocalSQLiteSink(tmp_path / "a.db"), MemorySink(),
                          LocalSQLiteSink(tmp_path / "b.db")])
    try:
        sink.store_package(make_package(10), receipt="sha256:r", body_bytes=1, received_at=NOW)

        def commits() -> dict[str, float]:
            return {s.labels["sink"]: s.value for s in families(render_metrics(sink))[
                "branchpy_sink_write_commits"] if s.labels["op"] == "store_package"}

        # a secondary's write may still be finishing in the background
        wait_until(lambda: commits().get("secondary2:sqlite"), timeout=10, what="the secondary's commit")
        assert commits() == {"primary:sqlite": 1, "secondary2:sqlite": 1}
        assert set(sink.member_health()) >= set(commits())
    finally:
        sink.close()


def test_label_values_are_escaped(tmp_path):
    sink = LocalSQLiteSink(tmp_path / "e.db")
    try:
        sink.write_retrier.stats.record_commit('we"ird\\op\nname')
        samples = families(render_metrics(sink))["branchpy_sink_write_commits"]
        assert 'we"ird\\op\nname' in {s.labels["op"] for s in samples}
    finally:
        sink.close()


def test_write_settings_reach_every_member_of_the_configured_sink(tmp_path):
    settings = load_backend_settings(env={}, db_urls=[f"sqlite:///{tmp_path / 'a.db'}",
                                                      f"sqlite:///{tmp_path / 'b.db'}"],
                                     write_shards=5, write_retry_deadline_s=2.5)
    sink = open_configured_sink(settings)
    try:
        assert [(c.write_shards, c.write_retrier.policy.deadline_s) for c in sink.children] == [(5, 2.5)] * 2
    finally:
        sink.close()


@pytest.mark.parametrize(("field", "value"), [("write_shards", "0"), ("write_shards", "1025"),
                                              ("write_retry_deadline_s", "-1")])
def test_bad_write_settings_are_refused_by_name(field, value):
    with pytest.raises(ConfigError, match=field):
        load_backend_settings(env={f"BRANCHPY_TELEMETRY_BACKEND_{field.upper()}": value})


def test_the_endpoint_needs_a_read_or_admin_key(tmp_path):
    app = create_app(load_backend_settings(env={}), LocalSQLiteSink(tmp_path / "m.db"))
    sink = app.extensions["branchpy_telemetry"].sink
    keys = {}
    for scope in ("ingest", "read", "admin"):
        keys[scope], record = generate_key(scope, None, utcnow())
        sink.add_api_key(record)
    client = app.test_client()
    assert client.get("/api/telemetry/metrics").status_code == 401
    assert client.get("/api/telemetry/metrics", headers={"X-API-Key": keys["ingest"]}).status_code == 403
    for scope in ("read", "admin"):
        response = client.get("/api/telemetry/metrics", headers={"X-API-Key": keys[scope]})
        assert response.status_code == 200
        assert response.content_type == "text/plain; version=0.0.4; charset=utf-8"
        assert "branchpy_sink_write_conflicts_total{" in response.get_data(as_text=True)
    sink.close()
