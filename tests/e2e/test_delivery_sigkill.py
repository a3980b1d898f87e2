"""Delivery acceptance: the daemon is SIGKILLed in the middle of an upload and
restarted; after the next run every event is stored exactly once.

A slow-responding proxy sits between the daemon and the real backend: it
forwards the first packages, then holds one request open — either after the
backend stored it (the response is lost) or before forwarding it (the request
is lost) — and the daemon is killed while it waits."""

from __future__ import annotations

import subprocess
import threading
from collections import Counter

import pytest
import requests

from branchpy_telemetry.client.contracts.config import load_config
from branchpy_telemetry.daemon.delivery.ledger import read_history

from ..conftest import console_script
from ..daemon.recording_server import RecordingServer, Reply
from .delivery_env import configure, emit_events, run_cli, start_live_backend, stored_event_ids

FORWARD_HEADERS = ("content-type", "content-encoding", "x-api-key")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    backend, key = start_live_backend(tmp_path_factory.mktemp("backend"))
    yield backend, key
    backend.stop()


@pytest.fixture
def proxy():
    server = RecordingServer().start()
    yield server
    server.stop()


def forward(backend, recorded) -> Reply:
    headers = {k: v for k, v in recorded.headers.items() if k.lower() in FORWARD_HEADERS}
    answer = requests.post(backend.api + "/upload", data=recorded.raw_body, headers=headers, timeout=30)
    return Reply(answer.status_code, answer.json())


@pytest.mark.parametrize("stored_before_kill", [True, False], ids=["response-lost", "request-lost"])
def test_sigkill_mid_upload_then_restart_stores_every_event_exactly_once(
        live, proxy, paths, subprocess_env, start_daemon, tmp_path, stored_before_kill):
    backend, key = live
    configure(paths.config_file, telemetry__endpoint=proxy.base_url, telemetry__api_key=key,
              telemetry__max_upload_size_mb=0.02)
    emitted = emit_events(subprocess_env, tmp_path, 400, workers=2)
    held = threading.Event()

    def hold(recorded) -> Reply:
        if stored_before_kill:
            forward(backend, recorded)
        held.set()
        return Reply(201, {}, hang_s=60)

    proxy.script(lambda r: forward(backend, r), lambda r: forward(backend, r), hold)
    daemon = start_daemon("--idle-timeout", "0")
    sync = subprocess.Popen([console_script("branchpy"), "telemetry", "sync", "--no-start"],
                            env=subprocess_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert held.wait(60), "the daemon never reached the third upload"
        daemon.proc.kill()
        daemon.proc.wait(10)
    finally:
        sync.kill()  # its daemon is gone; the client would wait out its timeout
        sync.wait(10)
    waiting = len(list(paths.outbox_dir.glob("*.json")))
    assert waiting >= 2  # the held package and at least one behind it are still in the outbox

    configure(paths.config_file, telemetry__endpoint=backend.api)
    start_daemon("--idle-timeout", "0")
    again = run_cli(subprocess_env, "sync")
    assert again.returncode == 0, again.stderr

    stored = Counter(i for i in stored_event_ids(backend) if i in set(emitted))
    assert sorted(stored) == sorted(emitted) and set(stored.values()) == {1}
    assert list(paths.outbox_dir.glob("*.json")) == []
    outcomes = Counter(r.outcome for r in read_history(paths.ledger_file))
    assert outcomes["duplicate"] == (1 if stored_before_kill else 0)
    config = load_config(paths.config_file, env={})
    assert config.telemetry.endpoint == backend.api
