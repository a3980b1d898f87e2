"""The Node client's appendEvent per event vs a naive raw writer (JSON.stringify + one
fs.writeSync to a kept-open append-mode file), in the same Node process.

    BRANCHPY_BENCH=full .venv/bin/python -m pytest tests/bench/test_bench_extension_append.py -q

appendEvent adds what the raw loop skips: validating the event, a UUIDv7 and
its timestamp, and the check that its segment is still its own (one stat) —
the price of a lock-free folder the daemon may read at any time. Rounds
alternate; the table shows the median and the fastest round of each.
"""

from __future__ import annotations

import json
import statistics
import subprocess
from pathlib import Path

import pytest

from ..e2e.test_node_client import node_executable
from .conftest import scaled

pytestmark = pytest.mark.bench

SCRIPT = Path(__file__).resolve().parents[2] / "client" / "vscode" / "testkit" / "bench_append.js"


def test_bench_append_event_vs_raw_write(tmp_path, report):
    per_round, rounds = scaled(20_000, 500), scaled(10, 2)
    out = subprocess.run([node_executable(), str(SCRIPT), str(tmp_path), str(per_round), str(rounds)],
                         capture_output=True, text=True, timeout=600, check=True).stdout
    result = json.loads(out)
    assert result["stats"]["written"] == per_round * rounds
    written = sum(len(p.read_text().splitlines()) for p in (tmp_path / "ours").glob("*.jsonl"))
    assert written == per_round * rounds
    ours, raw = statistics.median(result["ours"]), statistics.median(result["raw"])
    report(f"Node appendEvent vs JSON.stringify + fs.writeSync, {per_round:,} events x {rounds} rounds",
           ["writer", "median us/event", "best us/event", "ratio (median)", "ratio (best)"],
           [["appendEvent", ours, min(result["ours"]), ours / raw, min(result["ours"]) / min(result["raw"])],
            ["raw writeSync (baseline)", raw, min(result["raw"]), 1.0, 1.0]])
