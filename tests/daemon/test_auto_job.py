"""The auto-mode run in process, against a real recording HTTP server:
export by checkpoints -> outbox -> send; dry runs; consent; the daily budget;
auto mode following the config (start, reschedule, stop)."""

from __future__ import annotations

import threading

import pytest

from branchpy_telemetry.client.contracts.config import load_config
from branchpy_telemetry.client.contracts.errors import ConsentWithdrawnError
from branchpy_telemetry.daemon.control.auto_mode import apply_mode, auto_status, ensure_scheduler, run_job
from branchpy_telemetry.daemon.control.context import DaemonContext
from branchpy_telemetry.daemon.control.schedule import stop_schedule
from branchpy_telemetry.daemon.counters import CounterStore
from branchpy_telemetry.daemon.delivery.ledger import read_history
from branchpy_telemetry.daemon.scheduling.auto_job import run_auto_job

from . import recording_server as rs
from .test_checkpoints import append

FAST = {"backoff_base": 0.01, "backoff_cap": 0.02, "max_attempts": 2}


@pytest.fixture
def server():
    srv = rs.RecordingServer().start()
    yield srv
    srv.stop()


def config(paths, server, **overrides):
    overrides = {"telemetry.endpoint": server.base_url, **overrides}
    return load_config(paths.config_file, env={}, overrides=overrides)


def sent_event_ids(server) -> list[str]:
    return [e["event_id"] for r in server.requests for e in r.json()["summary"]["events"]]


def test_a_run_sends_every_new_event_once_and_the_next_run_only_what_is_new(paths, server):
    first = append(paths.active_spool, 30) + append(paths.extension_dir / "ext.jsonl", 5)
    report = run_auto_job(paths, config(paths, server), env={}, **FAST)
    assert (report.read_events, report.exported_events, report.delivered) == (35, 35, 1)
    assert sorted(sent_event_ids(server)) == sorted(first) and report.outbox_packages == 0
    later = append(paths.active_spool, 4)
    again = run_auto_job(paths, config(paths, server), env={}, **FAST)
    assert again.exported_events == 4 and sent_event_ids(server)[-4:] == later
    counters = CounterStore(paths.counters_file).snapshot()
    assert counters["emitted.events"] == 39 and counters["uploaded.events"] == 39
    assert run_auto_job(paths, config(paths, server), env={}, **FAST).exported_packages == 0


def test_a_large_backlog_is_split_into_packages_under_the_cap(paths, server):
    ids = append(paths.active_spool, 400)
    report = run_auto_job(paths, config(paths, server, **{"telemetry.max_upload_size_mb": 0.02}),
                          env={}, **FAST)
    assert report.exported_packages >= 3 and report.delivered == report.exported_packages
    assert sorted(sent_event_ids(server)) == sorted(ids)
    assert all(len(r.body) <= 0.02 * 1024 * 1024 for r in server.requests)


def test_dry_run_validates_and_records_each_package_once_and_sends_nothing(paths, server):
    append(paths.active_spool, 7)
    cfg = config(paths, server, **{"telemetry.auto.dry_run": True})
    assert run_auto_job(paths, cfg, env={}).dry_run_recorded == 1
    assert run_auto_job(paths, cfg, env={}).dry_run_recorded == 0
    [record] = read_history(paths.ledger_file)
    assert record.dry_run and record.events == 7 and server.requests == []


def test_withdrawn_consent_packages_the_events_but_sends_nothing(paths, server):
    append(paths.active_spool, 3)
    with pytest.raises(ConsentWithdrawnError):
        run_auto_job(paths, config(paths, server), env={"DO_NOT_TRACK": "1"})
    assert server.requests == [] and len(list(paths.outbox_dir.glob("*.json"))) == 1


def test_the_daily_budget_stops_sending_and_keeps_the_rest(paths, server):
    append(paths.active_spool, 50)
    cfg = config(paths, server, **{"telemetry.auto.daily_upload_budget_mb": 0.001})
    report = run_auto_job(paths, cfg, env={}, **FAST)
    assert report.over_budget == 1 and server.requests == [] and report.outbox_packages == 1


def test_a_run_waits_for_the_delivery_lock(paths, server):
    """A run (here `sync`, through the daemon's scheduler) waits while another delivery holds the lock."""
    daemon = DaemonContext(paths=paths, config=config(paths, server), version="t", idle_timeout=0)
    scheduler = ensure_scheduler(daemon)
    daemon.delivery_lock.acquire("upload")
    done = threading.Event()
    thread = threading.Thread(target=lambda: (scheduler.run_now(lambda: run_job(daemon)), done.set()))
    thread.start()
    try:
        assert not done.wait(0.3)
    finally:
        daemon.delivery_lock.release()
    thread.join(10)
    assert done.is_set() and scheduler.last_result().ok
    assert stop_schedule(daemon, timeout=5)


def test_auto_mode_follows_the_config_start_reschedule_stop(paths, server):
    daemon = DaemonContext(paths=paths, config=config(paths, server), version="t", idle_timeout=0)
    apply_mode(daemon)
    assert daemon.scheduler is None  # manual: no scheduler at all
    daemon.config = config(paths, server, **{"telemetry.mode": "auto", "telemetry.auto.interval": "1h"})
    apply_mode(daemon)
    try:
        assert daemon.scheduler.running and daemon.scheduler.interval_s == 3600
        daemon.config = config(paths, server, **{"telemetry.mode": "auto", "telemetry.auto.interval": "30m"})
        apply_mode(daemon)
        assert daemon.scheduler.interval_s == 1800 and auto_status(daemon)["next_run"]
        daemon.config = config(paths, server)
        apply_mode(daemon)
        assert not daemon.scheduler.running and auto_status(daemon)["scheduled"] is False
    finally:
        assert stop_schedule(daemon, timeout=5)


def test_a_package_that_fails_validation_is_quarantined_and_never_sent(paths, server):
    from branchpy_telemetry.daemon.delivery.outbox import Outbox

    outbox = Outbox(paths, 1024 * 1024)
    outbox.add(b'{"package_id": "broken", "summary": {"events": "not a list"}}')
    good = append(paths.active_spool, 2)
    report = run_auto_job(paths, config(paths, server), env={}, **FAST)
    assert report.quarantined == 1 and "not a valid telemetry package" in report.failure
    assert sent_event_ids(server) == good and len(server.requests) == 1
    assert [p.name for p, _ in outbox.quarantined()][0].endswith("broken.json")


def test_history_rejects_a_limit_below_1(paths):
    from branchpy_telemetry.client.contracts.errors import UsageError
    from branchpy_telemetry.daemon.control.context import RequestContext
    from branchpy_telemetry.daemon.control.handlers import history

    daemon = DaemonContext(paths=paths, config=load_config(None, env={}), version="t", idle_timeout=0)
    with pytest.raises(UsageError, match="greater than 0"):
        history.handle(RequestContext(daemon, "r1", "history"), {"limit": 0})
    assert history.handle(RequestContext(daemon, "r2", "history"), {"limit": 3}).records == []
