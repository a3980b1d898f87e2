"""emit() cost per event vs stdlib logging.FileHandler.info() of a line of the same size.

    BRANCHPY_BENCH=full .venv/bin/python -m pytest tests/bench/test_bench_emit.py -s -q

Target <= 1.0x, goal 0.5x. Both write to files in the same directory, the same
number of lines, in the same run. The two loops alternate in rounds so that
load from other processes on the machine hits both alike; the ratio is taken
over the sums and, as a cross-check, over the fastest round of each.
"""

from __future__ import annotations

import logging
import time

import pytest

from branchpy_telemetry.client.emitter import Emitter
from branchpy_telemetry.client.event import event_decoder

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
    emitter = Emitter(paths)
    attrs = {"flag_json": True, "files_scanned": 120}
    fields = dict(duration_ms=412.5, status="ok", attrs=attrs)
    assert emitter.emit("command", "analyze", **fields)  # warm-up: opens the spool
    line_size = len(paths.active_spool.read_bytes())
    logger, handler = _logging_file_logger(paths.spool_dir / "baseline.log")
    message = "x" * (line_size - 1)  # the handler adds the newline
    logger.info(message)

    emit = emitter.emit
    info = logger.info
    emit_rounds, log_rounds = [], []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(per_round):
            emit("command", "analyze", **fields)
        emit_rounds.append(time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(per_round):
            info(message)
        log_rounds.append(time.perf_counter() - start)
    handler.close()
    logger.removeHandler(handler)
    emitter.close()

    total = per_round * ROUNDS
    lines = paths.active_spool.read_bytes().splitlines()
    assert len(lines) == total + 1
    assert [event_decoder.decode(line).name for line in (lines[0], lines[-1])] == ["analyze", "analyze"]
    assert emitter.stats.snapshot()["dropped"] == {"write_error": 0, "invalid": 0, "consent": 0}

    emit_us = sum(emit_rounds) / total * 1e6
    log_us = sum(log_rounds) / total * 1e6
    best_emit_us = min(emit_rounds) / per_round * 1e6
    best_log_us = min(log_rounds) / per_round * 1e6
    report(
        f"emit() vs logging.FileHandler.info(), {total:,} lines of {line_size} bytes each "
        f"(target <= 1.0x, goal 0.5x)",
        ["writer", "µs/event (all rounds)", "µs/event (best round)", "ratio (all)", "ratio (best)"],
        [
            ["emit()", emit_us, best_emit_us, emit_us / log_us, best_emit_us / best_log_us],
            ["logging.FileHandler.info()", log_us, best_log_us, 1.0, 1.0],
        ],
    )
