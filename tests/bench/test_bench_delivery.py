"""Delivery benchmarks: latency from emit to stored in the backend
(auto mode, 10 s interval), and the daemon's idle CPU and RSS over a minute.

    BRANCHPY_BENCH=full .venv/bin/python -m pytest tests/bench/test_bench_delivery.py -s -q

Latency is bounded by the schedule: an event waits for the next run (up to
the interval plus its 10% jitter), so the baseline column is that bound.
Idle cost is measured in auto mode, where the scheduler wakes every 10 s and
finds nothing new; the baseline is a bare `python -c "import time; …sleep"`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import pytest

from branchpy_telemetry.client.emitter.emit import build_event, write_event

from ..backend.live_backend import process_rss_bytes
from ..e2e.delivery_env import configure, start_live_backend, stored_event_ids
from .conftest import scaled

pytestmark = pytest.mark.bench

INTERVAL_S = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


@pytest.fixture
def live(tmp_path):
    backend, key = start_live_backend(tmp_path / "backend")
    yield backend, key
    backend.stop()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


@pytest.mark.slow
def test_bench_emit_to_stored_latency_in_auto_mode(live, paths, start_daemon, report):
    backend, key = live
    configure(paths.config_file, telemetry__endpoint=backend.api, telemetry__api_key=key,
              telemetry__mode="auto", telemetry__auto__interval="10s")
    start_daemon("--idle-timeout", "0")
    n = scaled(full=8, smoke=2)
    spacing = INTERVAL_S * 1.3 / n  # spread over more than one interval: every phase of the schedule
    emitted: dict[str, float] = {}
    stored_at: dict[str, float] = {}
    next_emit = time.monotonic()
    deadline = next_emit + n * spacing + 3 * INTERVAL_S
    while time.monotonic() < deadline and len(stored_at) < n:
        if len(emitted) < n and time.monotonic() >= next_emit:
            record = build_event("command", "analyze", duration_ms=1.0)
            assert write_event(record)
            emitted[record.event_id] = time.monotonic()
            next_emit += spacing
        now = time.monotonic()
        for event_id in set(stored_event_ids(backend)) & (set(emitted) - set(stored_at)):
            stored_at[event_id] = now
        time.sleep(0.05)  # deliberate pause: the sampling step of the latency measurement
    assert len(stored_at) == n, f"only {len(stored_at)} of {n} events stored"
    latencies = sorted(stored_at[i] - emitted[i] for i in emitted)
    report(f"emit -> stored in the backend, auto mode, interval {INTERVAL_S:g}s (+10% jitter), {n} events",
           ["metric", "seconds", "bound (interval + jitter)"],
           [["p50", statistics.median(latencies), INTERVAL_S * 1.1],
            ["max", latencies[-1], INTERVAL_S * 1.1],
            ["min", latencies[0], 0.0]])


def test_bench_daemon_idle_cpu_and_rss_over_a_minute(live, paths, start_daemon, subprocess_env, report):
    backend, key = live
    configure(paths.config_file, telemetry__endpoint=backend.api, telemetry__api_key=key,
              telemetry__mode="auto", telemetry__auto__interval="10s")
    daemon = start_daemon("--idle-timeout", "0")
    seconds = scaled(full=60, smoke=3)
    baseline = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds + 30})"],
                                env=subprocess_env)
    try:
        time.sleep(1.0)  # deliberate pause: both settle after start-up before idle CPU is measured
        pids = {"branchpy-telemetryd (auto, 10s)": daemon.proc.pid,
                "python sleeping (baseline)": baseline.pid}
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        rss = {name: [] for name in pids}
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            for name, pid in pids.items():
                rss[name].append(process_rss_bytes(pid))
            time.sleep(0.5)  # deliberate pause: the RSS sampling step
        elapsed = time.monotonic() - t0
        rows = []
        for name, pid in pids.items():
            used = cpu_seconds(pid) - cpu0[name]
            rows.append([name, used * 1000, 100 * used / elapsed, max(rss[name]) / 2**20,
                         statistics.median(rss[name]) / 2**20])
        assert daemon.proc.poll() is None
        runs = daemon.call("status")["auto"]["runs"].get("runs", 0)
    finally:
        baseline.kill()
        baseline.wait()
    report(f"daemon idle over {elapsed:.0f}s ({runs} scheduled run(s) with nothing to send)",
           ["process", "CPU ms", "CPU %", "RSS max MiB", "RSS median MiB"], rows)
