"""The one delivery lock in a real daemon: deliveries that start while another one is sending
to a slow backend wait for it, and every package is delivered, and counted, exactly once.

The backend is a real HTTP server whose first answer is held open until the test lets it go
(a slow backend). While it is held, the test gives the second delivery a few seconds to
overlap; with the lock it does not get to send anything until the first one is done."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from branchpy_telemetry.client.contracts.errors import TelemetryError, UploadFailedError
from branchpy_telemetry.daemon.counters import CounterStore

from . import recording_server as rs
from .test_checkpoints import append

OVERLAP_WINDOW_S = 3.0  # how long a second delivery gets to (wrongly) send while the first is held


@pytest.fixture
def server():
    srv = rs.RecordingServer().start()
    yield srv
    srv.stop()


def hold_first_answer(server: rs.RecordingServer) -> threading.Event:
    """The next request waits (up to 30 s) until the returned event is set, then is accepted."""
    gate = threading.Event()

    def slow(recorded: rs.RecordedRequest) -> rs.Reply:
        gate.wait(30)
        return server.accept(recorded)

    server.script(slow)
    return gate


def in_thread(fn) -> tuple[threading.Thread, list]:
    """Run `fn` in a thread; the list gets its result or the exception it raised."""
    outcome: list = []

    def target():
        try:
            outcome.append(fn())
        except Exception as exc:  # handed to the test, which asserts on it
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def no_request_beyond(server: rs.RecordingServer, count: int) -> bool:
    """True when the backend sees no more than `count` requests within the overlap window."""
    try:
        server.wait_for_requests(count + 1, timeout=OVERLAP_WINDOW_S)
    except TimeoutError:
        return True
    return False


def stored_events(server: rs.RecordingServer) -> list[str]:
    """Event ids in the packages the backend stored (each package counted once)."""
    bodies = {}
    for request in server.requests:
        package = request.json()
        if package["package_id"] in server.stored:
            bodies[package["package_id"]] = package
    return [e["event_id"] for package in bodies.values() for e in package["summary"]["events"]]


def write_config(paths, text: str) -> None:
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(text)


def test_sync_while_a_scheduled_run_is_sending_waits_and_every_package_goes_once(paths, server,
                                                                                start_daemon):
    write_config(paths, f'[telemetry]\nmode = "auto"\nendpoint = "{server.base_url}"\n'
                        '[telemetry.auto]\ninterval = "10s"\n')
    first = append(paths.active_spool, 5)
    gate = hold_first_answer(server)
    daemon = start_daemon("--idle-timeout", "0", "--housekeeping-interval", "0")
    server.wait_for_requests(1, timeout=40)  # the first scheduled run is sending, held by the backend
    later = append(paths.active_spool, 4)
    sync, outcome = in_thread(lambda: daemon.call("sync", timeout=60))
    try:
        assert no_request_beyond(server, 1), "sync sent while the scheduled run was still sending"
    finally:
        gate.set()
    sync.join(60)
    assert outcome and not isinstance(outcome[0], Exception), outcome
    posted = Counter(r.json()["package_id"] for r in server.requests)
    assert posted and set(posted.values()) == {1}, posted  # no package sent twice
    assert sorted(stored_events(server)) == sorted(first + later)
    counters = CounterStore(paths.counters_file).snapshot()
    assert counters["uploaded.packages"] == len(server.stored) == 2
    assert counters["uploaded.events"] == len(first + later)


def test_upload_of_a_file_while_sync_sends_it_from_the_outbox_counts_it_once(paths, server, start_daemon,
                                                                            tmp_path):
    """A file whose earlier upload failed waits in the outbox; `sync` sends that copy while the user
    uploads the file again. The second send is the backend's duplicate, counted as such, not as
    a second delivery."""
    write_config(paths, f'[telemetry]\nendpoint = "{server.base_url}"\n')
    events = append(paths.active_spool, 6)
    daemon = start_daemon("--idle-timeout", "0", "--housekeeping-interval", "0")
    package = tmp_path / "rc-metrics.json"
    daemon.call("export", {"output": str(package)}, timeout=60)
    server.script(rs.error_reply(401, "unauthorized", "bad api key"))
    with pytest.raises(UploadFailedError):
        daemon.call("upload", {"file": str(package)}, timeout=60)
    assert len(list(paths.outbox_dir.glob("*.json"))) == 1  # the copy kept for the next run
    gate = hold_first_answer(server)
    sync, synced = in_thread(lambda: daemon.call("sync", timeout=60))
    server.wait_for_requests(2, timeout=30)  # sync is sending the outbox copy, held by the backend
    upload, uploaded = in_thread(lambda: daemon.call("upload", {"file": str(package)}, timeout=60))
    try:
        assert no_request_beyond(server, 2), "upload sent while sync was still sending"
    finally:
        gate.set()
    sync.join(60)
    upload.join(60)
    assert synced and not isinstance(synced[0], TelemetryError), synced
    counters = CounterStore(paths.counters_file).snapshot()
    assert len(server.stored) == 2  # the exported package and the one sync made of the same events
    assert counters["uploaded.packages"] == len(server.stored), counters
    assert counters["uploaded.events"] == 2 * len(events)
    assert counters["duplicates.packages"] == 1
    assert uploaded and uploaded[0]["results"][0]["outcome"] == "duplicate", uploaded
