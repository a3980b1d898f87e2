"""`status` counts exactly after lost answers and quarantine.

Filed: after lost replies and quarantine, status reported 205 events
quarantined with 617 in the quarantine folder, and under-counted uploads.
Two causes, each reproduced here against a real daemon and a recording HTTP
server:

- A package the backend stored but whose answer never arrived (a gateway
  timeout, a connection cut after the commit) comes back as a duplicate on
  the retry; its events were counted nowhere. It is now counted as uploaded
  when no receipt for it existed yet (and never twice).
- A package quarantined because it could not be read (a corrupted outbox
  file, refused locally) counted 0 events. Its events are now counted from
  what is in the file, and status reports the events in the quarantine
  folder next to the packages.
"""

from __future__ import annotations

import json

from branchpy_telemetry.daemon.delivery.outbox import Outbox

from ..daemon import recording_server as rs
from .delivery_env import configure, emit_events, run_cli


def status(env) -> dict:
    result = run_cli(env, "--json", "status")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def store_then_lose_the_answer(server):
    def reply(request):
        server.accept(request)  # the backend committed the package...
        return rs.error_reply(504, "gateway_timeout", "the proxy gave up")  # ...the answer is lost
    return reply


def test_a_package_whose_answer_was_lost_is_counted_once_as_uploaded(server, paths, subprocess_env,
                                                                     start_daemon, tmp_path):
    configure(paths.config_file, telemetry__endpoint=server.base_url, telemetry__max_upload_size_mb=0.02)
    start_daemon("--idle-timeout", "0")
    emitted = emit_events(subprocess_env, tmp_path, 120)
    server.script(store_then_lose_the_answer(server))
    synced = run_cli(subprocess_env, "sync")
    assert synced.returncode == 0, synced.stderr
    stored_events = sum(len(r.json()["summary"]["events"]) for r in server.requests)
    packages = len(server.stored)
    assert packages >= 2 and stored_events > len(emitted)  # one package was sent twice
    counters = status(subprocess_env)["counters"]
    assert counters["uploaded"] == len(emitted)
    assert counters["uploaded_packages"] == packages
    assert counters["duplicates"] == 1
    # the same package sent again later (a reviewed file uploaded twice) is not counted again
    package = tmp_path / "again.json"
    assert run_cli(subprocess_env, "config", "set", "telemetry.max_upload_size_mb", "5").returncode == 0
    assert run_cli(subprocess_env, "export", "--output", str(package)).returncode == 0
    assert run_cli(subprocess_env, "upload", "--file", str(package)).returncode == 0
    assert run_cli(subprocess_env, "upload", "--file", str(package)).returncode == 0
    counters = status(subprocess_env)["counters"]
    assert counters["uploaded"] == 2 * len(emitted)  # the recording server counts them as new rows
    assert counters["uploaded_packages"] == packages + 1 and counters["duplicates"] == 2


def test_quarantined_events_are_counted_as_what_the_quarantine_folder_holds(server, paths, subprocess_env,
                                                                            start_daemon):
    configure(paths.config_file, telemetry__endpoint=server.base_url)
    outbox = Outbox(paths, 100 * 1024 * 1024)
    rejected = outbox.add(rs.make_package_bytes(5))
    truncated = outbox.add(rs.make_package_bytes(7))
    garbled = outbox.add(rs.make_package_bytes(9))
    kept = outbox.add(rs.make_package_bytes(4))
    with open(truncated.path, "r+b") as fh:  # corrupted on disk: no longer JSON
        fh.truncate(fh.seek(0, 2) - 40)
    with open(garbled.path, "r+b") as fh:
        fh.seek(0)
        fh.write(b"\x00garbage\x00")
    server.script(rs.error_reply(422, "privacy_violation", "package breaks privacy rules"))
    start_daemon("--idle-timeout", "0")
    synced = run_cli(subprocess_env, "sync")
    assert synced.returncode == 4, synced.stderr  # quarantined ones are reported
    there = sum(path.read_bytes().count(b'"event_id":') for path, _ in outbox.quarantined())
    assert there == 5 + 7 + 9
    report = status(subprocess_env)
    assert report["outbox"]["quarantined"] == 3
    assert report["outbox"]["quarantined_events"] == there
    assert report["counters"]["quarantined"] == 3
    assert report["counters"]["quarantined_events"] == there
    assert report["counters"]["uploaded"] == 4 and kept.package_id in server.stored
    assert rejected.package_id not in server.stored
    shown = run_cli(subprocess_env, "status")
    assert f"3 quarantined ({there} events)" in shown.stdout
