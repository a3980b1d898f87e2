"""Export of a spool vs decoding the same files into Structs; peak RSS vs spool size.

    BRANCHPY_BENCH=full .venv/bin/python -m pytest tests/bench/test_bench_export.py -s -q

Ratio target <= 2.5x (goal 1.5x): `export_window` (read + sanitize + aggregate
+ encode + write size-capped parts) against `msgspec.json.Decoder(EventRecord)
.decode_lines` over the same files. Both run in fresh subprocesses, alternating,
and report CPU time (user+sys, what the work costs; robust on a shared machine)
and wall time; the fastest run of each is compared. Peak RSS (ru_maxrss / VmHWM
of the exporting process) at two spool sizes: under 200 MB, and flat as the
spool grows.

The spool: ~60% commands, 25% features, 15% performance events, 2-4 declared
attrs (the bundled catalog's), 4% with an undeclared path attr, 5% errors.
Errors recur (40 failures, each with its own message, as a bug hits the same
way again); the last row
is the worst case where every error message is distinct (each one must be
normalized and hashed, see client.contracts.error_hashing.normalize_error_message).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from branchpy_telemetry.client.contracts.catalog import describe_catalog, load_catalog
from branchpy_telemetry.client.contracts.event import ErrorInfo, EventRecord

from .conftest import full_size, scaled

pytestmark = pytest.mark.bench

RUNS = 3  # alternating decode/export runs per size; the fastest of each is compared
ROTATED_BYTES = 8 << 20  # telemetry.rotation.max_file_mb default

_COMMANDS = ["analyze", "lint", "build", "graph.flow", "export.flow", "check", "open", "save",
             "run.tests", "format", "validate", "preview"]
_FEATURES = ["control-center.open", "flow.zoom", "search", "quickfix.apply", "outline.toggle"]
_PERFORMANCE = ["parse", "index.build", "graph.render"]

DECODE_CHILD = r"""
import json, sys, time
from pathlib import Path
import msgspec
from branchpy_telemetry.client.contracts.event import EventRecord
files = sorted(Path(sys.argv[1]).glob("*.jsonl"))
decoder = msgspec.json.Decoder(EventRecord)
start, cpu = time.perf_counter(), time.process_time()
n = 0
for f in files:
    n += len(decoder.decode_lines(f.read_bytes()))
print(json.dumps({"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu, "events": n}))
"""

EXPORT_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from branchpy_telemetry.client.contracts.config import load_config
from branchpy_telemetry.client.contracts.paths import resolve_paths
from branchpy_telemetry.daemon.export.exporter import export_window
paths, config = resolve_paths(), load_config(None, env={})
start, cpu = time.perf_counter(), time.process_time()
result = export_window(paths, config, Path(sys.argv[1]), None, None)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
hwm = next((int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")), 0)
print(json.dumps({"seconds": seconds, "cpu": cpu, "events": result.events, "files": len(result.files),
                  "skipped": result.skipped_lines, "bytes": result.bytes,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "vmhwm_mb": hwm / 1024}))
"""


def declared_value(attr, r: random.Random):
    """A valid value for a catalog attribute declaration (what a well-behaved app emits)."""
    kind = attr["type"]
    if kind == "bool":
        return r.random() < 0.5
    if kind == "int":
        return r.randint(attr.get("min", 0), min(attr.get("max", 5000), 5000))
    if kind == "float":
        return round(r.uniform(attr.get("min", 0.0), min(attr.get("max", 10.0), 10.0)), 3)
    if kind == "enum":
        return r.choice(attr["values"])
    if kind == "version":
        return f"{r.randint(1, 3)}.{r.randint(0, 20)}.{r.randint(0, 9)}"
    if kind == "duration_ms":
        return round(r.lognormvariate(4, 1.2), 3)
    return r.choice(["renpy-8.2", "renpy-7.6", "BP-R101", "dark-blue"])  # pattern: filtered below


def write_spool(spool_dir: Path, count: int, seed: int = 42, distinct_errors: bool = False) -> int:
    """`count` realistic events as a spool: 8 MB rotated files, then the active file.

    Names and attrs follow the bundled catalog (2-4 declared attrs each, as an app
    emits them); 4% carry an undeclared path attr and 5% an error, as before."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    r = random.Random(seed)
    described = describe_catalog(load_catalog(), datetime(2026, 12, 1, tzinfo=UTC).date())
    declared = {(e["category"], e["name"]): e for e in msgspec.to_builtins(described)["events"]}
    failures = [(f"BP-E{1000 + k}", r.choice(["ValueError", "OSError", "KeyError"]),
                 f"cannot parse /home/alice/vn/game/s{k}.rpy line {r.randint(1, 3000)}") for k in range(40)]
    enc = msgspec.json.Encoder()
    start = datetime(2026, 11, 20, tzinfo=UTC)
    sessions = [f"{r.getrandbits(128):032x}" for _ in range(200)]
    buf: list[bytes] = []
    size = total = rotated = 0

    def flush(name: str) -> None:
        nonlocal buf, size, total
        with open(spool_dir / name, "ab") as fh:
            fh.write(b"".join(buf))
        total += size
        buf, size = [], 0

    for i in range(count):
        ts = start + timedelta(milliseconds=i * 997)
        roll = r.random()
        category = "command" if roll < 0.6 else "feature" if roll < 0.85 else "performance"
        name = r.choice(_COMMANDS if category == "command" else _FEATURES if category == "feature"
                        else _PERFORMANCE)
        spec = declared[(category, name)]["attrs"]
        keys = r.sample(sorted(spec), min(len(spec), r.randint(2, 4)))
        attrs = {k: declared_value(spec[k], r) for k in keys}
        attrs = {k: v for k, v in attrs.items()
                 if spec[k]["type"] != "pattern" or re.fullmatch(spec[k]["regex"], v)}
        if r.random() < 0.04:
            attrs["file"] = r.choice(["/home/alice/vn/game/script.rpy", "C:\\Users\\bob\\vn\\game\\x.rpy",
                                      "game/chapter2.rpy"])
        error, status = None, "ok"
        if r.random() < 0.05:
            status = "error"
            code, etype, message = r.choice(failures)
            if distinct_errors:
                message = f"cannot parse /home/alice/vn/game/s{i}.rpy line {r.randint(1, 3000)}"
            error = ErrorInfo(code=code, type=etype, message=message)
        session = sessions[(i // 500) % len(sessions)]
        rec = EventRecord(event_id=str(uuid.UUID(int=0x01a2 << 112 | 0x7 << 76 | 0x2 << 62 | i)),
                          ts=ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
                          category=category, source="cli" if r.random() < 0.8 else "extension", name=name,
                          duration_ms=round(r.lognormvariate(4, 1.2), 3), status=status, session_id=session,
                          correlation_id=session if r.random() < 0.3 else None, error=error,
                          attrs=attrs or None)
        line = enc.encode(rec) + b"\n"
        buf.append(line)
        size += len(line)
        if size >= ROTATED_BYTES:
            rotated += 1
            flush(f"events-20261120T{rotated:012d}-1.jsonl")
    flush("events.jsonl")
    return total


def _run(code: str, *args: str, env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _home_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANCHPY_TELEMETRY")}
    env["BRANCHPY_TELEMETRY_HOME"] = str(home)
    env.pop("DO_NOT_TRACK", None)
    return env


def _measure(tmp_path: Path, count: int, runs: int, distinct_errors: bool = False) -> dict:
    home = tmp_path / f"home{count}{'-distinct' if distinct_errors else ''}"
    env = _home_env(home)
    spool = home / "state" / "spool"
    nbytes = write_spool(spool, count, distinct_errors=distinct_errors)
    out_dir = home / "out"
    out_dir.mkdir()
    decodes, exports = [], []
    for run in range(runs):
        decodes.append(_run(DECODE_CHILD, str(spool), env=env))
        exports.append(_run(EXPORT_CHILD, str(out_dir / f"pkg{run}.json"), env=env))
    assert all(d["events"] == count for d in decodes)
    assert all(e["events"] == count and e["skipped"] == 0 for e in exports)
    return {
        "count": count, "bytes": nbytes, "files": exports[0]["files"],
        "decode_cpu": min(d["cpu"] for d in decodes), "export_cpu": min(e["cpu"] for e in exports),
        "decode_wall": min(d["seconds"] for d in decodes), "export_wall": min(e["seconds"] for e in exports),
        "peak": max(max(e["maxrss_mb"], e["vmhwm_mb"]) for e in exports),
    }


def test_bench_export_vs_msgspec_decode_and_peak_rss(tmp_path, report):
    small, large = scaled(full=100_000, smoke=1_000), scaled(full=500_000, smoke=5_000)
    runs = RUNS if full_size() else 1
    results = [_measure(tmp_path, small, runs), _measure(tmp_path, large, runs)]
    worst = _measure(tmp_path, small, runs, distinct_errors=True)
    rows = []
    for label, m in [("", results[0]), ("", results[1]), ("every error message distinct", worst)]:
        rows.append([f"{m['count']:,}", f"{m['bytes'] / 1e6:.0f} MB", label or "recurring errors",
                     f"{m['decode_cpu']:.2f}", f"{m['export_cpu']:.2f}",
                     f"{m['export_cpu'] / m['decode_cpu']:.2f}x",
                     f"{m['decode_wall']:.2f}", f"{m['export_wall']:.2f}",
                     f"{m['export_wall'] / m['decode_wall']:.2f}x", f"{m['count'] / m['export_wall']:,.0f}"])
    report("export vs msgspec decode into Structs (target <= 2.5x, goal 1.5x)",
           ["events", "spool", "errors", "decode cpu s", "export cpu s", "cpu ratio", "decode wall s",
            "export wall s", "wall ratio", "export ev/s"], rows)
    report("export peak RSS (target < 200 MB, flat as the spool grows)",
           ["events", "spool", "package files", "peak RSS MB"],
           [[f"{m['count']:,}", f"{m['bytes'] / 1e6:.0f} MB", m["files"], f"{m['peak']:.0f}"]
            for m in results])
    if full_size():
        assert results[-1]["peak"] < 200, f"peak RSS {results[-1]['peak']:.0f} MB"
