"""Draining the outbox and `upload --file` against a real HTTP server (no mocked HTTP)."""

from __future__ import annotations

import hashlib
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from branchpy_telemetry.client.contracts.config import load_config
from branchpy_telemetry.client.contracts.errors import PackageChangedError
from branchpy_telemetry.daemon.counters import CounterStore
from branchpy_telemetry.daemon.delivery.budget import DailyUploadBudget
from branchpy_telemetry.daemon.delivery.deliver import deliver_file, send_outbox
from branchpy_telemetry.daemon.delivery.ledger import read_history
from branchpy_telemetry.daemon.delivery.outbox import Outbox

from . import recording_server as rs

FAST = {"backoff_base": 0.01, "backoff_cap": 0.05, "max_attempts": 2}
MB = 1024 * 1024


@pytest.fixture
def server():
    srv = rs.RecordingServer().start()
    yield srv
    srv.stop()


def config_for(endpoint: str):
    return load_config(None, env={}, overrides={"telemetry.endpoint": endpoint, "telemetry.api_key": "k"})


def _dead_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/api/telemetry"


def test_outbox_drains_oldest_first_with_receipts_in_the_ledger(server, paths):
    outbox = Outbox(paths, 10 * MB)
    entries = [outbox.add(rs.make_package_bytes(n)) for n in (1, 2, 3)]
    report = send_outbox(outbox, config_for(server.base_url), paths.ledger_file, **FAST)
    assert (report.delivered, report.kept, report.events_delivered) == (3, 0, 6) and not report.failed
    assert [r.json()["package_id"] for r in server.requests] == [e.package_id for e in entries]
    assert outbox.pending() == []
    history = read_history(paths.ledger_file)
    assert [h.package_id for h in history] == [e.package_id for e in reversed(entries)]
    assert all(h.receipt == server.stored[h.package_id] and h.outcome == "delivered" for h in history)
    assert CounterStore(paths.counters_file).snapshot()["uploaded.events"] == 6


def test_dead_backend_keeps_everything_then_next_run_delivers_it(server, paths):
    outbox = Outbox(paths, 10 * MB)
    for n in (2, 3):
        outbox.add(rs.make_package_bytes(n))
    down = send_outbox(outbox, config_for(_dead_endpoint()), paths.ledger_file, **FAST)
    assert down.failed and down.kept == 2 and down.delivered == 0
    assert len(outbox.pending()) == 2 and read_history(paths.ledger_file) == []
    assert "cannot reach" in down.entries[0].message and down.entries[0].kept_at
    up = send_outbox(outbox, config_for(server.base_url), paths.ledger_file, **FAST)
    assert up.delivered == 2 and outbox.pending() == [] and len(server.stored) == 2


def test_422_quarantines_without_retry_and_the_rest_still_go(server, paths):
    outbox = Outbox(paths, 10 * MB)
    bad, good = outbox.add(rs.make_package_bytes(1)), outbox.add(rs.make_package_bytes(1))
    details = [{"pointer": "/summary/events/0/attrs/x", "rule": "raw_path"}]
    server.script(rs.error_reply(422, "privacy_violation", "package breaks privacy rules", details))
    report = send_outbox(outbox, config_for(server.base_url), paths.ledger_file, **FAST)
    assert (report.quarantined, report.delivered) == (1, 1) and report.failed
    assert len(server.requests) == 2  # one try for the bad one, one for the good one
    [(path, reason)] = outbox.quarantined()
    assert path.name == bad.name and reason["code"] == "privacy_violation" and reason["details"] == details
    assert report.entries[0].message == "package breaks privacy rules"
    assert [h.package_id for h in read_history(paths.ledger_file)] == [good.package_id]


def test_401_keeps_the_package_instead_of_quarantining_it(server, paths):
    outbox = Outbox(paths, 10 * MB)
    outbox.add(rs.make_package_bytes(1))
    server.script(rs.error_reply(401, "unauthorized", "invalid API key"))
    report = send_outbox(outbox, config_for(server.base_url), paths.ledger_file, **FAST)
    assert report.kept == 1 and report.quarantined == 0 and len(outbox.pending()) == 1


def test_redelivery_after_a_crash_before_removal_is_a_duplicate(server, paths):
    data = rs.make_package_bytes(2)
    outbox = Outbox(paths, 10 * MB)
    entry = outbox.add(data)
    send_outbox(outbox, config_for(server.base_url), paths.ledger_file, **FAST)
    Path(entry.path).write_bytes(data)  # as if the daemon died before removing it
    report = send_outbox(outbox, config_for(server.base_url), paths.ledger_file, **FAST)
    assert (report.delivered, report.duplicates) == (0, 1) and outbox.pending() == []
    assert len(server.stored) == 1


def test_a_run_that_dies_midway_has_counted_and_recorded_what_it_delivered(server, paths):
    outbox = Outbox(paths, 10 * MB)
    for n in (2, 3, 4):
        outbox.add(rs.make_package_bytes(n))
    calls = []

    def clock_that_dies_on_the_second_package():
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("daemon killed")
        return datetime.now(UTC)

    with pytest.raises(RuntimeError):
        send_outbox(outbox, config_for(server.base_url), paths.ledger_file,
                    clock=clock_that_dies_on_the_second_package, **FAST)
    counters = CounterStore(paths.counters_file).snapshot()
    assert (counters["uploaded.packages"], counters["uploaded.events"]) == (1, 2)
    assert len(read_history(paths.ledger_file)) == 1 and len(outbox.pending()) == 2
    # The second package reached the backend before the run died: the next run finds it a duplicate.
    again = send_outbox(outbox, config_for(server.base_url), paths.ledger_file, **FAST)
    assert (again.delivered, again.duplicates) == (1, 1) and outbox.pending() == []
    counters = CounterStore(paths.counters_file).snapshot()
    counted = (counters["uploaded.packages"], counters["uploaded.events"], counters["duplicates.packages"])
    assert counted == (3, 9, 1)  # the duplicate's 3 events, stored by the attempt that "died", count once


def test_dry_run_validates_and_records_but_never_sends(server, paths):
    outbox = Outbox(paths, 10 * MB)
    entry = outbox.add(rs.make_package_bytes(4))
    report = send_outbox(outbox, config_for(server.base_url), paths.ledger_file, dry_run=True, **FAST)
    assert report.dry_run == 1 and server.requests == [] and outbox.pending() == [entry]
    [record] = read_history(paths.ledger_file)
    assert record.dry_run and record.outcome == "dry_run" and record.events == 4 and record.receipt is None


def test_daily_budget_stops_the_drain_and_keeps_the_rest(server, paths):
    outbox = Outbox(paths, 10 * MB)
    entries = [outbox.add(rs.make_package_bytes(2)) for _ in range(3)]
    budget = DailyUploadBudget(paths.ledger_file, entries[0].size + entries[1].size)
    report = send_outbox(outbox, config_for(server.base_url), paths.ledger_file, budget=budget, **FAST)
    assert (report.delivered, report.over_budget) == (2, 1)
    assert outbox.pending() == [entries[2]] and len(server.requests) == 2


def test_upload_file_delivered_records_receipt_and_leaves_the_file(server, paths, tmp_path):
    package = tmp_path / "rc-metrics.json"
    package.write_bytes(rs.make_package_bytes(3))
    result = deliver_file(package, config_for(server.base_url), Outbox(paths, 10 * MB), paths.ledger_file,
                          expected_sha256=hashlib.sha256(package.read_bytes()).hexdigest(), **FAST)
    assert result.outcome == "delivered" and package.exists()
    [record] = read_history(paths.ledger_file)
    assert record.file == str(package) and record.receipt == result.receipt


def test_upload_file_failure_keeps_a_copy_in_the_outbox_and_names_it(paths, tmp_path):
    package = tmp_path / "rc-metrics.json"
    package.write_bytes(rs.make_package_bytes(3))
    outbox = Outbox(paths, 10 * MB)
    result = deliver_file(package, config_for(_dead_endpoint()), outbox, paths.ledger_file, **FAST)
    assert result.outcome == "retry" and package.exists()
    [entry] = outbox.pending()
    assert result.kept_at == entry.path and Path(entry.path).read_bytes() == package.read_bytes()


def test_upload_file_422_is_quarantined_with_the_reason(server, paths, tmp_path):
    package = tmp_path / "rc-metrics.json"
    package.write_bytes(rs.make_package_bytes(3))
    server.script(rs.error_reply(422, "schema_invalid", "bad schema"))
    outbox = Outbox(paths, 10 * MB)
    result = deliver_file(package, config_for(server.base_url), outbox, paths.ledger_file, **FAST)
    assert result.outcome == "rejected" and result.message == "bad schema"
    assert Path(result.kept_at).parent == paths.quarantine_dir and outbox.pending() == []
    assert len(server.requests) == 1


def test_upload_file_changed_since_review_is_refused_and_nothing_sent(server, paths, tmp_path):
    package = tmp_path / "rc-metrics.json"
    package.write_bytes(rs.make_package_bytes(3))
    reviewed = hashlib.sha256(package.read_bytes()).hexdigest()
    package.write_bytes(rs.make_package_bytes(3))
    with pytest.raises(PackageChangedError):
        deliver_file(package, config_for(server.base_url), Outbox(paths, 10 * MB), paths.ledger_file,
                     expected_sha256=reviewed, **FAST)
    assert server.requests == [] and read_history(paths.ledger_file) == []


def test_upload_file_dry_run_records_and_sends_nothing(server, paths, tmp_path):
    package = tmp_path / "rc-metrics.json"
    package.write_bytes(rs.make_package_bytes(3))
    result = deliver_file(package, config_for(server.base_url), Outbox(paths, 10 * MB), paths.ledger_file,
                          dry_run=True)
    assert result.outcome == "dry_run" and server.requests == []
    assert read_history(paths.ledger_file)[0].dry_run


def test_withdrawn_consent_keeps_the_outbox_and_sends_nothing(server, paths):
    from branchpy_telemetry.client.contracts.errors import ConsentWithdrawnError

    outbox = Outbox(paths, 10 * MB)
    entry = outbox.add(rs.make_package_bytes(2))
    with pytest.raises(ConsentWithdrawnError):
        send_outbox(outbox, config_for(server.base_url), paths.ledger_file, env={"DO_NOT_TRACK": "1"}, **FAST)
    assert outbox.pending() == [entry] and server.requests == []


def test_an_over_cap_package_in_the_outbox_is_quarantined_without_a_request(server, paths):
    outbox = Outbox(paths, 10 * MB)
    outbox.add(rs.make_package_bytes(4, pad_events_to=20_000))
    config = load_config(None, env={}, overrides={"telemetry.endpoint": server.base_url,
                                                  "telemetry.max_upload_size_mb": 0.01})
    report = send_outbox(outbox, config, paths.ledger_file, **FAST)
    assert report.quarantined == 1 and server.requests == []
    [(_, reason)] = outbox.quarantined()
    assert reason["code"] == "package_too_large"


def test_an_entry_removed_during_the_run_is_skipped_not_fatal(server, paths):
    outbox = Outbox(paths, 10 * MB)
    first, gone, last = (outbox.add(rs.make_package_bytes(1)) for _ in range(3))

    def purge_while_sending(request):  # `purge` runs while the first package is on the wire
        Path(gone.path).unlink()
        return server.accept(request)

    server.script(purge_while_sending)
    report = send_outbox(outbox, config_for(server.base_url), paths.ledger_file, **FAST)
    assert report.delivered == 2 and outbox.pending() == []
    assert [r.json()["package_id"] for r in server.requests] == [first.package_id, last.package_id]


def test_failure_error_maps_outcomes_to_exit_codes_with_reason_and_kept_path(server, paths, tmp_path):
    from branchpy_telemetry.daemon.delivery.deliver import failure_error

    package = tmp_path / "rc-metrics.json"
    package.write_bytes(rs.make_package_bytes(1))
    outbox = Outbox(paths, 10 * MB)
    ok = deliver_file(package, config_for(server.base_url), outbox, paths.ledger_file, **FAST)
    assert failure_error(ok) is None

    down = deliver_file(package, config_for(_dead_endpoint()), outbox, paths.ledger_file, **FAST)
    error = failure_error(down)
    assert error.code == "upload_failed" and error.exit_code == 5
    assert down.kept_at in error.message and "cannot reach" in error.message

    package.write_bytes(rs.make_package_bytes(1))
    server.script(rs.error_reply(422, "privacy_violation", "package breaks privacy rules"))
    rejected = deliver_file(package, config_for(server.base_url), outbox, paths.ledger_file, **FAST)
    error = failure_error(rejected)
    assert error.code == "privacy_violation" and error.exit_code == 4
    assert "package breaks privacy rules" in error.message and rejected.kept_at in error.message

    package.write_bytes(rs.make_package_bytes(1))
    server.script(rs.error_reply(403, "forbidden", "key lacks the ingest scope"))
    forbidden = deliver_file(package, config_for(server.base_url), outbox, paths.ledger_file, **FAST)
    error = failure_error(forbidden)
    assert error.exit_code == 5 and "api_key" in error.hint and "ingest scope" in error.message
