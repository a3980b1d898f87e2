"""Long commands run on worker threads: `status` keeps answering, progress reaches subscribers.

An in-process ControlServer with a test registry (a handler that blocks on an
Event), on real ipc:// sockets under this test's home.
"""

from __future__ import annotations

import threading

import pytest
import zmq

from branchpy_telemetry.client.contracts.config import load_config
from branchpy_telemetry.client.thin.ipc import ControlClient
from branchpy_telemetry.daemon.control.context import DaemonContext
from branchpy_telemetry.daemon.control.handlers import shutdown, status
from branchpy_telemetry.daemon.control.server import ControlServer


@pytest.fixture
def server_with_blocking_job(paths):
    release = threading.Event()
    started = threading.Event()

    def block(ctx, args):
        started.set()
        step = 0
        while not release.wait(0.05):  # publish progress until the test releases the job
            step += 1
            ctx.progress(step, 1000, stage="block")
            if step > 400:
                raise TimeoutError("test never released the job")
        return {"released": True}

    registry = {"status": status.handle, "shutdown": shutdown.handle, "block": block}
    daemon = DaemonContext(paths=paths, config=load_config(None), version="t", idle_timeout=0)
    server = ControlServer(daemon, registry, frozenset({"block"}))
    server.bind()
    loop = threading.Thread(target=server.serve, daemon=True)
    loop.start()
    yield server, release, started
    release.set()
    with ControlClient(paths.control_endpoint, timeout=5, retries=1) as client:
        client.call("shutdown")
    loop.join(10)
    server.close()
    assert not loop.is_alive()


def test_status_answers_while_a_long_job_runs_and_the_job_replies_when_done(server_with_blocking_job, paths):
    server, release, started = server_with_blocking_job
    context = zmq.Context()
    job = context.socket(zmq.DEALER)
    job.setsockopt(zmq.LINGER, 0)
    try:
        job.connect(paths.control_endpoint)
        job.send_multipart([b"", b'{"v":1,"id":"job-1","cmd":"block"}'])
        assert started.wait(10)
        with ControlClient(paths.control_endpoint, timeout=5, retries=1) as client:
            assert client.call("status")["pid"] > 0
        assert not job.poll(0)  # the job has not answered yet
        release.set()
        assert job.poll(10_000)
        frames = job.recv_multipart()
        assert b'"released":true' in frames[1] and b'"id":"job-1"' in frames[1]
    finally:
        job.close(linger=0)
        context.term()


def test_progress_of_a_background_job_reaches_the_requesting_client(server_with_blocking_job, paths):
    server, release, started = server_with_blocking_job
    seen = []

    def on_progress(progress):
        seen.append((progress.id, progress.cmd, progress.stage, progress.total))
        release.set()  # the job only finishes once progress got through

    with ControlClient(paths.control_endpoint, timeout=15, retries=1,
                       progress_endpoint=paths.progress_endpoint) as client:
        result = client.call("block", request_id="p-1", on_progress=on_progress)
    assert result == {"released": True}
    assert seen and all(item == ("p-1", "block", "block", 1000) for item in seen)


def test_lazy_pirate_resend_of_a_running_job_gets_the_one_reply(server_with_blocking_job, paths):
    server, release, started = server_with_blocking_job
    calls = []
    original = server.registry["block"]
    server.registry = {**server.registry, "block": lambda ctx, args: calls.append(1) or original(ctx, args)}
    releaser = threading.Timer(1.0, release.set)
    releaser.start()
    try:
        with ControlClient(paths.control_endpoint, timeout=0.4, retries=10) as client:
            assert client.call("block", request_id="same-id") == {"released": True}
    finally:
        releaser.cancel()
    assert calls == [1]


def test_manual_daemon_does_not_idle_out_while_a_job_runs(paths):
    release = threading.Event()
    started = threading.Event()

    def block(ctx, args):
        started.set()
        release.wait(20)
        return {"released": True}

    daemon = DaemonContext(paths=paths, config=load_config(None), version="t", idle_timeout=0.3)
    server = ControlServer(daemon, {"block": block, "status": status.handle}, frozenset({"block"}))
    server.bind()
    outcome = []
    loop = threading.Thread(target=lambda: outcome.append(server.serve()), daemon=True)
    loop.start()
    context = zmq.Context()
    job = context.socket(zmq.DEALER)
    job.setsockopt(zmq.LINGER, 0)
    try:
        job.connect(paths.control_endpoint)
        job.send_multipart([b"", b'{"v":1,"id":"long","cmd":"block"}'])
        assert started.wait(10)
        loop.join(1.0)  # more than three idle timeouts with the job still running
        assert loop.is_alive()
        release.set()
        assert job.poll(10_000) and b'"released":true' in job.recv_multipart()[1]
        loop.join(10)  # now idle: it exits by itself
        assert outcome == ["idle"]
    finally:
        release.set()
        job.close(linger=0)
        context.term()
        server.close()
