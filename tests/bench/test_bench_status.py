"""`branchpy telemetry status` wall time (daemon running) vs `python -c "import zmq, msgspec"`.

    BRANCHPY_BENCH=full .venv/bin/python -m pytest tests/bench/test_bench_status.py -s -q

Target <= 2x. Both are whole processes started the same way, alternating, so
load from other processes hits both alike; the ratio is reported over the
medians and over the fastest run of each.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import scaled

pytestmark = pytest.mark.bench

BRANCHPY = str(Path(sys.executable).parent / "branchpy")


def wall_time(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return elapsed


def test_bench_status_vs_importing_zmq_and_msgspec(running_daemon, subprocess_env, report):
    runs = scaled(full=30, smoke=3)
    status_cmd = [BRANCHPY, "telemetry", "status", "--no-start"]
    baseline_cmd = [sys.executable, "-c", "import zmq, msgspec"]
    wall_time(status_cmd, subprocess_env)  # warm the page cache for both
    wall_time(baseline_cmd, subprocess_env)
    status_times, baseline_times = [], []
    for _ in range(runs):
        status_times.append(wall_time(status_cmd, subprocess_env))
        baseline_times.append(wall_time(baseline_cmd, subprocess_env))
    assert running_daemon.proc.poll() is None  # every status was answered by the one daemon

    med_status, med_base = statistics.median(status_times), statistics.median(baseline_times)
    best_status, best_base = min(status_times), min(baseline_times)
    report(
        f"`branchpy telemetry status` (daemon running) vs `python -c \"import zmq, msgspec\"`, "
        f"{runs} runs each (target <= 2x)",
        ["command", "median ms", "best ms", "ratio (median)", "ratio (best)"],
        [
            ["branchpy telemetry status", med_status * 1000, best_status * 1000,
             med_status / med_base, best_status / best_base],
            ["python -c 'import zmq, msgspec'", med_base * 1000, best_base * 1000, 1.0, 1.0],
        ],
    )


def test_status_path_does_not_import_heavy_modules(running_daemon, subprocess_env):
    """Start-up stays lean: a full `status` round trip never loads structlog, flask, apscheduler,
    requests or the emitter."""
    code = ("import sys\n"
            "from branchpy_telemetry.client.thin.cli import main\n"
            "code = main.main(['telemetry', 'status', '--json', '--no-start'])\n"
            "heavy = ('structlog', 'flask', 'apscheduler', 'requests', 'werkzeug', "
            "'branchpy_telemetry.client.emitter.emit')\n"
            "print('LOADED:' + ','.join(m for m in heavy if m in sys.modules), code)")
    result = subprocess.run([sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True,
                            timeout=60)
    last = result.stdout.strip().splitlines()[-1]
    assert last == "LOADED: 0", (last, result.stderr)
