"""sanitize_event cost against msgspec-decoding the same spool lines.

    BRANCHPY_BENCH=full .venv/bin/python -m pytest tests/bench/test_bench_sanitize.py -s -q

The exporter's whole budget is 2.5x the decode of the spool, so sanitizing
must stay well under it. Batches alternate and the fastest of several runs
of each is compared, so load from other processes hits both alike. Like
every bench it prints, it does not assert on time.
"""

from __future__ import annotations

import random
import time

import msgspec

from branchpy_telemetry.client.event import ErrorInfo, EventRecord
from branchpy_telemetry.client.privacy import RedactionReport, sanitize_event

from .conftest import scaled

RUNS = 7


def make_lines(count: int, seed: int = 7) -> bytes:
    """A realistic mix: mostly clean, 4% with a path attr, 5% errors with unique messages."""
    r = random.Random(seed)
    enc = msgspec.json.Encoder()
    sessions = [f"{r.getrandbits(128):032x}" for _ in range(20)]
    lines = []
    for i in range(count):
        attrs: dict = {"flag_json": r.random() < 0.5, "files_scanned": r.randint(0, 5000)}
        if r.random() < 0.6:
            attrs["mode"] = r.choice(["fast", "full", "incremental"])
        if r.random() < 0.04:
            attrs["file"] = r.choice(
                ["/home/alice/vn/game/script.rpy", "C:\\Users\\bob\\x.rpy", "game/c2.rpy"]
            )
        error = None
        if r.random() < 0.05:
            error = ErrorInfo(
                code=f"BP-E{r.randint(1000, 1020)}",
                type="ValueError",
                message=f"cannot parse /home/alice/game/s{r.randint(1, 9)}.rpy line {r.randint(1, 3000)}",
            )
        rec = EventRecord(
            event_id=f"{0x01A2 << 112 | i:032x}",
            ts=f"2026-11-28T01:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}Z",
            category="command",
            source="cli",
            name=r.choice(["analyze", "lint", "build", "graph.flow"]),
            duration_ms=r.random() * 900,
            status="error" if error else "ok",
            session_id=sessions[i % 20],
            error=error,
            attrs=attrs,
        )
        lines.append(enc.encode(rec))
    return b"\n".join(lines) + b"\n"


def sanitize_all(records: list[EventRecord]) -> None:
    report = RedactionReport()
    for i, rec in enumerate(records):
        sanitize_event(rec, i, report)
        report.counts, report.findings = {}, []


def test_bench_sanitize_event_vs_msgspec_decode(report) -> None:
    count = scaled(full=50_000, smoke=2_000)
    data = make_lines(count)
    decoder = msgspec.json.Decoder(EventRecord)
    records = decoder.decode_lines(data)
    decode_best = sanitize_best = float("inf")
    for _ in range(RUNS):
        started = time.perf_counter()
        decoder.decode_lines(data)
        decode_best = min(decode_best, time.perf_counter() - started)
        started = time.perf_counter()
        sanitize_all(records)
        sanitize_best = min(sanitize_best, time.perf_counter() - started)
    report(f"sanitize_event vs msgspec decode_lines ({count} events, {len(data) // count} B/line)",
           ["step", "us/event", "ratio"],
           [["msgspec decode_lines (baseline)", decode_best / count * 1e6, 1.0],
            ["sanitize_event", sanitize_best / count * 1e6, sanitize_best / decode_best]])
