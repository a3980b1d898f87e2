"""emit() cost per event vs stdlib logging.FileHandler.info() of a line of the same size.

    BRANCHPY_BENCH=full .venv/bin/python -m pytest tests/bench/test_bench_emit.py -s -q

Target <= 1.0x, goal 0.5x. Both write to files in the same directory, the same
number of lines, in the same run. The two loops alternate in rounds so that
load from other processes on the machine hits both alike. Ratios: over the
summed wall time (the headline), over the fastest round of each, and over
process CPU time (user + system: what each costs this process, whatever the
machine's load).
"""

from __future__ import annotations

import logging
import time

import pytest

from branchpy_telemetry.client import emit  # what BranchPy calls
from branchpy_telemetry.client.contracts.event import event_decoder
from branchpy_telemetry.client.emitter.emit import emitter_stats

from .conftest import scaled

pytestmark = pytest.mark.bench

ROUNDS = 10


def _logging_file_logger(path) -> tuple[logging.Logger, logging.Handler]:
    logger = logging.getLogger(f"bench.emit.{path.name}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    return logger, handler


def test_bench_emit_vs_logging_filehandler_same_line_size(paths, report):
    count = scaled(full=200_000, smoke=2_000)
    per_round = count // ROUNDS
    # The public emit() (default per-process emitter, following BRANCHPY_TELEMETRY_HOME).
    attrs = {"flag_json": True, "files_scanned": 120}
    fields = dict(duration_ms=412.5, status="ok", attrs=attrs)
    before = emitter_stats()
    assert emit("command", "analyze", **fields)  # warm-up: opens the spool
    line_size = len(paths.active_spool.read_bytes())
    logger, handler = _logging_file_logger(paths.spool_dir / "baseline.log")
    message = "x" * (line_size - 1)  # the handler adds the newline
    logger.info(message)

    info = logger.info
    wall = {"emit": [], "log": []}
    cpu = {"emit": [], "log": []}
    for _ in range(ROUNDS):
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(per_round):
            emit("command", "analyze", **fields)
        wall["emit"].append(time.perf_counter() - start)
        cpu["emit"].append(time.process_time() - start_cpu)
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(per_round):
            info(message)
        wall["log"].append(time.perf_counter() - start)
        cpu["log"].append(time.process_time() - start_cpu)
    handler.close()
    logger.removeHandler(handler)

    total = per_round * ROUNDS
    lines = paths.active_spool.read_bytes().splitlines()
    assert len(lines) == total + 1
    assert [event_decoder.decode(line).name for line in (lines[0], lines[-1])] == ["analyze", "analyze"]
    after = emitter_stats()
    assert after["emitted"] - before["emitted"] == total + 1
    assert after["dropped"] == before["dropped"]

    def us(times: list[float]) -> float:
        return sum(times) / total * 1e6

    def best_us(times: list[float]) -> float:
        return min(times) / per_round * 1e6

    rows = []
    for label, key in (("emit()", "emit"), ("logging.FileHandler.info()", "log")):
        rows.append([label, us(wall[key]), best_us(wall[key]), us(cpu[key]),
                     us(wall[key]) / us(wall["log"]), best_us(wall[key]) / best_us(wall["log"]),
                     us(cpu[key]) / us(cpu["log"])])
    report(
        f"emit() vs logging.FileHandler.info(): {total:,} lines of {line_size} bytes each, "
        f"same folder, {ROUNDS} alternating rounds (target <= 1.0x, goal 0.5x)",
        ["writer", "wall µs/event", "best round µs/event", "CPU µs/event",
         "ratio (wall)", "ratio (best round)", "ratio (CPU)"],
        rows,
    )
