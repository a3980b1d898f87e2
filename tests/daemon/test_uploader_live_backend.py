"""End to end against the real backend: a package exported by the real exporter,
uploaded to a real `branchpy-telemetry-backend serve` subprocess (SQLite)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import requests

from branchpy_telemetry.client.contracts.config import load_config
from branchpy_telemetry.client.contracts.event import EventRecord, event_encoder
from branchpy_telemetry.client.contracts.timewindow import format_ts, utcnow
from branchpy_telemetry.client.emitter.stamping import new_event_id
from branchpy_telemetry.daemon.delivery.deliver import deliver_file, send_outbox
from branchpy_telemetry.daemon.delivery.ledger import read_history
from branchpy_telemetry.daemon.delivery.outbox import Outbox
from branchpy_telemetry.daemon.export.exporter import export_window
from branchpy_telemetry.daemon.export.package_records import find_export_record

from ..backend.live_backend import start_sqlite_backend

MB = 1024 * 1024
FAST = {"backoff_base": 0.01, "backoff_cap": 0.05, "max_attempts": 2}


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    """One real backend for the module (startup is the slow part); tests compare counts before/after."""
    live = start_sqlite_backend(tmp_path_factory.mktemp("backend"))
    yield live
    live.stop()


def _emit(paths, n: int) -> None:
    paths.spool_dir.mkdir(parents=True, exist_ok=True)
    with paths.active_spool.open("ab") as fh:
        for i in range(n):
            record = EventRecord(event_id=new_event_id(), ts=format_ts(utcnow()), category="command",
                                 source="cli", name="analyze", duration_ms=10.0 + i, status="ok",
                                 attrs={"files_scanned": i})
            fh.write(event_encoder.encode(record) + b"\n")


def _stored_events(backend) -> int:
    reply = requests.get(backend.api + "/stats", headers=backend.headers("read"), timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()["events"]


def _config(paths, endpoint: str, key: str | None):
    return load_config(paths.config_file, env={},
                       overrides={"telemetry.endpoint": endpoint, "telemetry.api_key": key or ""})


def test_exported_package_is_stored_once_even_when_uploaded_twice(backend, paths, tmp_path):
    _emit(paths, 25)
    config = _config(paths, backend.api, backend.keys["ingest"])
    exported = export_window(paths, config, tmp_path / "rc-metrics.json", None, None)
    [package] = exported.files
    record = find_export_record(paths.exports_file, Path(package))
    assert record is not None
    expected = record.sha256

    before = _stored_events(backend)
    outbox = Outbox(paths, 10 * MB)
    first = deliver_file(package, config, outbox, paths.ledger_file, expected_sha256=expected, **FAST)
    assert first.outcome == "delivered" and first.receipt.startswith("sha256:")
    again = deliver_file(package, config, outbox, paths.ledger_file, expected_sha256=expected, **FAST)
    assert again.outcome == "duplicate"
    assert _stored_events(backend) - before == 25
    assert [r.outcome for r in read_history(paths.ledger_file)] == ["duplicate", "delivered"]


def test_backend_down_keeps_the_package_and_the_next_run_delivers_it(backend, paths, tmp_path):
    _emit(paths, 10)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/api/telemetry"
    config_down = _config(paths, dead, backend.keys["ingest"])
    exported = export_window(paths, config_down, tmp_path / "rc-metrics.json", None, None)
    outbox = Outbox(paths, 10 * MB)
    kept = deliver_file(exported.files[0], config_down, outbox, paths.ledger_file, **FAST)
    assert kept.outcome == "retry" and kept.kept_at == outbox.pending()[0].path

    before = _stored_events(backend)
    report = send_outbox(outbox, _config(paths, backend.api, backend.keys["ingest"]), paths.ledger_file,
                         **FAST)
    assert report.delivered == 1 and outbox.pending() == []
    assert _stored_events(backend) - before == 10


def test_wrong_api_key_is_rejected_with_the_servers_message_and_kept(backend, paths, tmp_path):
    _emit(paths, 3)
    config = _config(paths, backend.api, "not-a-key")
    exported = export_window(paths, config, tmp_path / "rc-metrics.json", None, None)
    outbox = Outbox(paths, 10 * MB)
    result = deliver_file(exported.files[0], config, outbox, paths.ledger_file, **FAST)
    assert result.outcome == "rejected" and result.status_code == 401 and result.message
    assert outbox.pending() and outbox.quarantined() == []  # the key is wrong, not the package


def test_a_privacy_violation_is_quarantined_after_one_request_with_the_servers_pointers(backend, paths):
    import uuid

    from branchpy_telemetry.client.contracts.schema import (
        Platform,
        SanitizedEvent,
        Summary,
        TelemetryPackage,
        UsageStatistics,
        package_encoder,
    )

    event = SanitizedEvent(event_id=new_event_id(), ts=format_ts(utcnow()), category="command", source="cli",
                           name="analyze", attrs={"script": "/home/alice/game/script.rpy"})
    package = TelemetryPackage(
        schema_version="1.0.0", package_id=str(uuid.uuid4()), export_timestamp=format_ts(utcnow()),
        branchpy_version="0.0.0", platform=Platform(os="linux", arch="x86_64", python="3.11"),
        summary=Summary(events=[event], event_count=1), performance_metrics={},
        usage_statistics=UsageStatistics(), errors=[], governance_id=str(uuid.uuid4()), correlation_ids=[])
    before = _stored_events(backend)
    outbox = Outbox(paths, 10 * MB)
    outbox.add(package_encoder.encode(package))
    report = send_outbox(outbox, _config(paths, backend.api, backend.keys["ingest"]), paths.ledger_file,
                         **FAST)
    assert report.quarantined == 1 and report.entries[0].status_code == 422
    [(_, reason)] = outbox.quarantined()
    assert reason["code"] == "privacy_violation" and reason["status_code"] == 422
    assert any(d.get("pointer", "").startswith("/summary/events/0") for d in reason["details"])
    assert "/home/alice" not in str(reason)  # the server never echoes the value
    assert _stored_events(backend) == before
