"""Applying the catalog and the rules against msgspec-decoding the same spool lines.

    BRANCHPY_BENCH=full .venv/bin/python -m pytest tests/bench/test_bench_sanitize.py -s -q

The exporter's whole budget is 2.5x the decode of the spool, so deciding what
may leave must stay well under it: the block proof (`dirty_positions`, compiled
when built) for every record, `sanitize_event` for the records it declines.
Batches alternate and the fastest of several runs of each is compared, so
load from other processes hits both alike. Like
every bench it prints, it does not assert on time.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import date

import msgspec

from branchpy_telemetry.client.contracts.catalog import load_catalog
from branchpy_telemetry.client.contracts.declared import ExportPolicy, sanitize_event
from branchpy_telemetry.client.contracts.event import ErrorInfo, EventRecord
from branchpy_telemetry.client.contracts.redaction import RedactionReport
from branchpy_telemetry.daemon.export.block_proof import dirty_positions

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
            event_id=str(uuid.UUID(int=0x01A2 << 112 | 0x7 << 76 | 0x2 << 62 | i)),
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


BLOCK = 3500  # about what one 1 MB read of the spool decodes to


def sanitize_all(records: list[EventRecord]) -> None:
    report = RedactionReport()
    policy = ExportPolicy(catalog=load_catalog(), today=date(2026, 12, 1), id_key=b"k" * 32)
    for start in range(0, len(records), BLOCK):
        block = records[start:start + BLOCK]
        for i in dirty_positions(block, policy):
            sanitize_event(block[i], i, report, policy)
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
            ["block proof + sanitize_event where declined", sanitize_best / count * 1e6,
             sanitize_best / decode_best]])
