"""upload_package against a real HTTP server on a real port (no mocked HTTP)."""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import time
from importlib import metadata
from pathlib import Path

import pytest

from branchpy_telemetry.client.contracts.config import load_config
from branchpy_telemetry.client.contracts.errors import NotFoundError, PackageChangedError
from branchpy_telemetry.daemon.delivery.uploader import prepare_upload, upload_package, verify_unchanged
from branchpy_telemetry.daemon.export.package_records import ExportRecord, find_export_record, record_exports

from . import recording_server as rs

FAST = {"backoff_base": 0.01, "backoff_cap": 0.05}


@pytest.fixture(autouse=True)
def consent_given(monkeypatch):
    for var in ("DO_NOT_TRACK", "BRANCHPY_TELEMETRY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def server():
    srv = rs.RecordingServer().start()
    yield srv
    srv.stop()


def config_for(endpoint: str, **overrides):
    values = {"telemetry.endpoint": endpoint, "telemetry.api_key": "test-key-123"}
    values.update(overrides)
    return load_config(None, env={}, overrides=values)


@pytest.fixture
def package_file(tmp_path) -> Path:
    path = tmp_path / "rc-metrics.json"
    path.write_bytes(rs.make_package_bytes(5))
    return path


def test_2xx_delivers_gzipped_file_with_api_key_and_records_receipt(server, package_file):
    outcome = upload_package(package_file, config_for(server.base_url), **FAST)
    assert outcome.outcome == "delivered" and outcome.ok
    assert outcome.status_code == 201 and outcome.attempts == 1
    assert outcome.events == 5 and outcome.accepted_events == 5
    [req] = server.requests
    assert req.path == "/api/telemetry/upload" and req.method == "POST"
    assert req.headers["X-Api-Key"] == "test-key-123"
    assert req.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(req.raw_body) == package_file.read_bytes()  # exactly the reviewed bytes
    assert outcome.receipt == server.stored[outcome.package_id]
    assert outcome.bytes == package_file.stat().st_size and outcome.wire_bytes == len(req.raw_body)


def test_the_user_agent_names_the_installed_version(server, package_file):
    upload_package(package_file, config_for(server.base_url), **FAST)
    [req] = server.requests
    assert req.headers["User-Agent"] == f"branchpy-telemetry/{metadata.version('branchpy-telemetry')}"


def test_same_package_again_is_a_duplicate_not_an_error(server, package_file):
    first = upload_package(package_file, config_for(server.base_url), **FAST)
    again = upload_package(package_file, config_for(server.base_url), **FAST)
    assert (first.outcome, again.outcome) == ("delivered", "duplicate")
    assert again.status_code == 200 and again.ok and again.receipt == first.receipt


def test_500_is_retried_with_backoff_then_given_up_and_file_kept(server, package_file):
    server.script(*[rs.error_reply(500, "internal", "boom")] * 3)
    delays: list[float] = []  # the backoff it asks for, recorded instead of slept
    outcome = upload_package(package_file, config_for(server.base_url), sleep=delays.append, max_attempts=3,
                             **FAST)
    assert outcome.outcome == "retry" and not outcome.ok and not outcome.should_quarantine
    assert outcome.attempts == 3 and len(server.requests) == 3
    assert len(delays) == 2 and all(0 <= d <= 0.05 for d in delays)
    assert outcome.server_message == "boom" and outcome.status_code == 500
    assert package_file.exists()


def test_500_then_201_delivers_on_the_second_attempt(server, package_file):
    server.script(rs.Reply(500, None))
    outcome = upload_package(package_file, config_for(server.base_url), **FAST)
    assert outcome.outcome == "delivered" and outcome.attempts == 2
    assert outcome.server_message is None


def test_429_retry_after_2_is_honoured_between_real_requests(server, package_file):
    server.script(rs.error_reply(429, "rate_limited", "slow down", headers={"Retry-After": "2"}))
    outcome = upload_package(package_file, config_for(server.base_url), **FAST)
    assert outcome.outcome == "delivered" and outcome.attempts == 2
    first, second = server.wait_for_requests(2)
    assert second.at - first.at >= 2.0


def test_503_with_http_date_retry_after_waits_what_the_server_said(server, package_file):
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    now = datetime(2026, 11, 28, 3, 0, 0, tzinfo=UTC)
    when = format_datetime(now + timedelta(seconds=42), usegmt=True)
    server.script(rs.error_reply(503, "sink_down", "database unavailable", headers={"Retry-After": when}))
    waits: list[float] = []
    outcome = upload_package(package_file, config_for(server.base_url), sleep=waits.append,
                             clock=lambda: now, **FAST)
    assert waits == [pytest.approx(42.0)]
    assert outcome.outcome == "delivered" and outcome.attempts == 2


def test_retry_after_longer_than_the_wait_budget_stops_and_reports_it(server, package_file):
    server.script(rs.error_reply(429, "rate_limited", "later", headers={"Retry-After": "600"}))
    waits: list[float] = []
    outcome = upload_package(package_file, config_for(server.base_url), sleep=waits.append,
                             max_total_wait=60, **FAST)
    assert outcome.outcome == "throttled" and outcome.retry_after == 600.0
    assert waits == [] and len(server.requests) == 1


def test_422_is_rejected_with_the_servers_message_and_never_retried(server, package_file):
    details = [{"pointer": "/summary/events/3/attrs/x", "rule": "raw_path"}]
    server.script(rs.error_reply(422, "privacy_violation", "package breaks privacy rules", details))
    outcome = upload_package(package_file, config_for(server.base_url), **FAST)
    assert outcome.outcome == "rejected" and outcome.should_quarantine
    assert outcome.attempts == 1 and len(server.requests) == 1
    assert outcome.error_code == "privacy_violation"
    assert outcome.server_message == "package breaks privacy rules" and outcome.details == details


def test_401_is_rejected_but_not_blamed_on_the_package(server, package_file):
    server.script(rs.error_reply(401, "unauthorized", "missing or invalid API key"))
    outcome = upload_package(package_file, config_for(server.base_url), **FAST)
    assert outcome.outcome == "rejected" and not outcome.should_quarantine
    assert outcome.server_message == "missing or invalid API key" and len(server.requests) == 1


def test_non_json_error_body_is_still_reported(server, package_file):
    server.script(rs.Reply(400, None))
    outcome = upload_package(package_file, config_for(server.base_url), **FAST)
    assert outcome.outcome == "rejected" and outcome.error_code == "http_400"
    assert "400" in outcome.server_message


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_dead_backend_connection_refused_is_retried_then_kept(package_file):
    endpoint = f"http://127.0.0.1:{_dead_port()}/api/telemetry"
    outcome = upload_package(package_file, config_for(endpoint), max_attempts=3, **FAST)
    assert outcome.outcome == "retry" and outcome.attempts == 3
    assert outcome.status_code is None and outcome.error_code == "network_error"
    assert "cannot reach" in outcome.server_message and not outcome.should_quarantine
    # the cause in a few words, not urllib3's retry wrapper
    assert outcome.server_message == f"cannot reach {endpoint}/upload: Connection refused"
    assert package_file.exists()


def test_a_hanging_server_times_out_and_is_retried(server, package_file):
    server.script(rs.Reply(201, {}, hang_s=10), rs.Reply(201, {}, hang_s=10))
    started = time.monotonic()
    outcome = upload_package(package_file, config_for(server.base_url), read_timeout=0.3, **FAST)
    assert outcome.outcome == "delivered" and outcome.attempts == 3
    assert len(server.requests) == 3 and time.monotonic() - started < 5


def test_timeouts_only_end_as_retry_with_a_timeout_code(server, package_file):
    server.script(*[rs.Reply(201, {}, hang_s=10)] * 2)
    outcome = upload_package(package_file, config_for(server.base_url), read_timeout=0.2,
                             max_attempts=2, **FAST)
    assert outcome.outcome == "retry" and outcome.error_code == "timeout"
    assert outcome.server_message.endswith(": timed out")


def test_over_cap_package_is_refused_before_sending(server, tmp_path):
    big = tmp_path / "big.json"
    big.write_bytes(rs.make_package_bytes(4, pad_events_to=20_000))
    config = config_for(server.base_url, **{"telemetry.max_upload_size_mb": 0.01})  # ~10 KB
    outcome = upload_package(big, config, **FAST)
    assert outcome.outcome == "rejected" and outcome.error_code == "package_too_large"
    assert outcome.attempts == 0 and outcome.should_quarantine
    assert "over the upload cap" in outcome.server_message and "max_upload_size_mb" in outcome.server_message
    assert server.requests == []


def test_a_file_that_is_not_a_package_is_refused_before_sending(server, tmp_path):
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": "world"}')
    outcome = upload_package(bad, config_for(server.base_url), **FAST)
    assert outcome.outcome == "rejected" and outcome.error_code == "invalid_package"
    assert server.requests == []


def test_missing_file_is_a_clear_not_found_error(server, tmp_path):
    with pytest.raises(NotFoundError, match="no such package file"):
        upload_package(tmp_path / "nope.json", config_for(server.base_url))


def recorded_sha256(exports: Path, package: Path) -> str | None:
    record = find_export_record(exports, package)
    return record.sha256 if record is not None else None


def _record_export(paths_dir: Path, package: Path) -> Path:
    """The exporter's own record of `package`, then a torn line (a crash mid-append)."""
    data = package.read_bytes()
    exports = paths_dir / "exports.jsonl"
    record_exports(exports, [ExportRecord(
        path=str(package.resolve()), sha256=hashlib.sha256(data).hexdigest(),
        package_id=json.loads(data)["package_id"], events=5, bytes=len(data),
        created="2026-11-28T01:00:00.000Z")])
    with exports.open("a") as fh:
        fh.write('{"path": "torn')  # a torn last line never breaks the lookup
    return exports


def test_changed_file_is_refused_with_package_changed_error(server, package_file, tmp_path):
    exports = _record_export(tmp_path, package_file)
    expected = recorded_sha256(exports, package_file)
    assert expected is not None
    assert verify_unchanged(package_file, expected) == expected
    package_file.write_bytes(package_file.read_bytes().replace(b'"analyze"', b'"analyzE"', 1))
    with pytest.raises(PackageChangedError) as info:
        upload_package(package_file, config_for(server.base_url), expected_sha256=expected)
    assert info.value.code == "package_changed" and info.value.exit_code == 4
    assert server.requests == []


def test_unchanged_file_with_recorded_hash_uploads(server, package_file, tmp_path):
    expected = recorded_sha256(_record_export(tmp_path, package_file), package_file)
    outcome = upload_package(package_file, config_for(server.base_url), expected_sha256=f"sha256:{expected}")
    assert outcome.outcome == "delivered"


def test_recorded_sha256_is_none_for_unknown_files_and_missing_ledger(tmp_path, package_file):
    assert recorded_sha256(tmp_path / "exports.jsonl", package_file) is None
    exports = _record_export(tmp_path, package_file)
    assert recorded_sha256(exports, tmp_path / "other.json") is None


def test_prepare_upload_does_everything_but_send(package_file):
    prepared = prepare_upload(package_file, config_for("http://127.0.0.1:9/api/telemetry"))
    assert gzip.decompress(prepared.gzipped) == package_file.read_bytes()
    assert prepared.events == 5 and prepared.sha256 == hashlib.sha256(package_file.read_bytes()).hexdigest()


@pytest.mark.parametrize("env", [{"DO_NOT_TRACK": "1"}, {"BRANCHPY_TELEMETRY": "off"}])
def test_withdrawn_consent_blocks_the_upload_and_sends_nothing(server, package_file, env):
    from branchpy_telemetry.client.contracts.errors import ConsentWithdrawnError

    with pytest.raises(ConsentWithdrawnError) as info:
        upload_package(package_file, config_for(server.base_url), env=env, **FAST)
    assert info.value.code == "consent_withdrawn" and server.requests == []
