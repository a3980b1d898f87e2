"""Acceptance (issue 2, item 6): several processes emit events full of paths,
user names and script content; `branchpy telemetry export` (CLI -> real daemon)
writes a package that is checked field by field: every event accounted for,
aggregates recomputed here independently, no removed value anywhere in the
output files, valid against the published JSON Schema. Plus: split parts under
a small cap, malformed lines, window filtering, the extension folder, preview
of a valid and of a tampered package, and the governance id.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import jsonschema
import msgspec
import pytest

from branchpy_telemetry.client.config import load_config
from branchpy_telemetry.client.error_hashing import hash_error_message
from branchpy_telemetry.client.event import EventRecord, new_event_id
from branchpy_telemetry.client.privacy import attr_key_rule, check_string
from branchpy_telemetry.client.schema import decode_package, package_json_schema
from branchpy_telemetry.client.timewindow import format_ts, parse_time
from branchpy_telemetry.daemon.exporter import export_window
from branchpy_telemetry.daemon.identity import load_or_create_governance_id, reset_governance_id
from branchpy_telemetry.daemon.preview import preview_file, render_preview_text

from ..conftest import console_script

WORKERS = 3
PER_WORKER = 120

# Every value below must be removed before export (as a value, a key, or a hashed message).
SENSITIVE = [
    "/home/alice/proj", "alice", "C:\\Users\\bob", "Users\\\\bob", "bob\\\\", "~/x.rpy", "game/script.rpy",
    "fileserver", "file:///home", "Hello there", "scene bg room", "second line", "evil_type",
    "as-key.rpy", "secret.rpy", "Documents", "No such file", "failed at line", "vn-project",
    "label start", "x" * 201, "alice.smith", "studio.example", "bpt_live", "apiKey",
]

CHILD = r'''
import sys, msgspec
from branchpy_telemetry.client import build_event, write_event
w, n = int(sys.argv[1]), int(sys.argv[2])
out = []
for i in range(n):
    kind = i % 6
    ms = float((w * 1000 + i * 37) % 997) + 0.5
    if kind == 0:
        rec = build_event("command", "analyze", duration_ms=ms, status="ok",
                          attrs={"file": f"/home/alice/proj{w}/game/script.rpy", "files_scanned": i,
                                 "flag_json": True})
    elif kind == 1:
        rec = build_event("command", "lint", duration_ms=ms, status="error",
                          error={"code": "BP-E1042", "type": "FileNotFoundError",
                                 "message": f"[Errno 2] No such file or directory: "
                                            f"'C:\\Users\\bob\\Documents\\game{w}\\x{i}.rpy'"},
                          attrs={"win": "C:\\Users\\bob\\x.rpy", "count": i})
    elif kind == 2:
        rec = build_event("feature", "graph.open", duration_ms=ms,
                          attrs={"dialogue": 'e "Hello there"\nmc "Hi, alice!"',
                                 "script": "label start:\n    scene bg room",
                                 "home": "~/x.rpy", "rel": "game/script.rpy", "zoom": 1.5})
    elif kind == 3:
        rec = build_event("command", "analyze", duration_ms=ms, correlation_id=f"corr-{w}-{i % 4}",
                          attrs={"note_text": "x" * 250, "unc": "\\\\fileserver\\share\\bob",
                                 "uri": "file:///home/alice/x.rpy", "/home/alice/as-key.rpy": 1})
    elif kind == 4:
        rec = build_event("error", "export.flow", status="error",
                          error={"code": "BP-E2001", "type": "/home/alice/evil_type.py",
                                 "message": f"user alice failed at line {i}"},
                          attrs={"summary": "first line\nsecond line"})
    else:
        rec = build_event("command", "open /home/alice/secret.rpy", duration_ms=ms,
                          attrs={"version": "1.2.3", "mode": "fast", "owner": "alice.smith@studio.example",
                                 "npm": "pkg@1.2.3", "apiKey": f"bpt_live_{w}x{i}zz", "max_tokens": 9})
    assert write_event(rec)
    out.append(rec)
sys.stdout.buffer.write(b"".join(msgspec.json.encode(r) + b"\n" for r in out))
'''


# --- helpers: what the package must say, computed here from the raw records ------

def expected_event(rec: EventRecord) -> dict:
    def structural(value):
        return value if value is None or check_string(value) is None else "[redacted]"

    attrs = {}
    for key, value in (rec.attrs or {}).items():
        if check_string(key) is not None or attr_key_rule(key) is not None:
            continue
        if isinstance(value, str) and check_string(value) is not None:
            continue
        if not isinstance(value, str | int | float | bool | type(None)):
            continue
        attrs[key] = value
    err = rec.error
    out = {"event_id": rec.event_id, "ts": rec.ts, "category": rec.category, "source": rec.source,
           "name": structural(rec.name), "duration_ms": rec.duration_ms, "status": rec.status,
           "session_id": rec.session_id, "correlation_id": structural(rec.correlation_id),
           "error_code": structural(err.code) if err else None,
           "error_hash": hash_error_message(err.message or "", err.type) if err and (err.message or err.type)
           else None,
           "attrs": attrs}
    return {k: v for k, v in out.items() if v is not None and v != {}}


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def check_aggregates(pkg: dict, records: list[EventRecord]) -> None:
    expected = [expected_event(r) for r in records]
    durations = defaultdict(list)
    for e in expected:
        if "duration_ms" in e:
            durations[e["name"]].append(e["duration_ms"])
    assert set(pkg["performance_metrics"]) == set(durations)
    for name, values in durations.items():
        m = pkg["performance_metrics"][name]
        assert m["count"] == len(values)
        assert m["total_ms"] == pytest.approx(sum(values))
        assert m["mean_ms"] == pytest.approx(sum(values) / len(values))
        assert m["p50_ms"] == nearest_rank(values, 50) and m["p95_ms"] == nearest_rank(values, 95)
        assert m["max_ms"] == max(values)
    usage = pkg["usage_statistics"]
    assert usage["commands"] == dict(Counter(e["name"] for e in expected if e["category"] == "command"))
    assert usage["features"] == dict(Counter(e["name"] for e in expected if e["category"] == "feature"))
    assert usage["categories"] == dict(Counter(e["category"] for e in expected))
    assert usage["sources"] == dict(Counter(e["source"] for e in expected))
    assert usage["statuses"] == dict(Counter(e["status"] for e in expected if "status" in e))
    groups = defaultdict(list)
    raw_type = {}
    for rec, e in zip(records, expected, strict=True):
        if "error_hash" in e:
            key = (e["error_hash"], e.get("error_code"), e["name"])
            groups[key].append(e["ts"])
            t = rec.error.type
            raw_type[key] = t if t is not None and check_string(t) is None else None
    got = {(s["error_hash"], s["error_code"], s["name"]): s for s in pkg["errors"]}
    assert set(got) == set(groups)
    for key, stamps in groups.items():
        s = got[key]
        assert (s["count"], s["first_seen"], s["last_seen"]) == (len(stamps), min(stamps), max(stamps))
        assert s["error_type"] == raw_type[key]
    assert pkg["correlation_ids"] == sorted({e["correlation_id"] for e in expected if "correlation_id" in e})
    stamps = [e["ts"] for e in expected]
    s = pkg["summary"]
    assert (s["first_event_ts"], s["last_event_ts"]) == (min(stamps), max(stamps))
    assert s["event_count"] == len(expected) == len(s["events"])


def assert_no_sensitive_bytes(files: list[Path], extra: list[str] = ()) -> None:
    for path in files:
        data = path.read_bytes()
        for value in [*SENSITIVE, *extra]:
            for form in {value, json.dumps(value)[1:-1]}:
                assert form.encode() not in data, f"{value!r} leaked into {path.name}"


# --- fixtures -------------------------------------------------------------------

@pytest.fixture
def emitted(paths, subprocess_env) -> list[EventRecord]:
    """WORKERS processes emit at once through the real emitter; returns what each wrote."""
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(w), str(PER_WORKER)], env=subprocess_env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for w in range(WORKERS)]
    records = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        records += msgspec.json.Decoder(EventRecord).decode_lines(out)
    return records


@pytest.fixture
def extension_records(paths) -> list[EventRecord]:
    """The VS Code extension (another program) writes its own JSONL."""
    base = parse_time("2026-11-28T00:00:00Z")
    recs = [EventRecord(event_id=new_event_id(), ts=format_ts(base + timedelta(seconds=i)),
                        category="feature", source="extension", name="controlCenter.open",
                        duration_ms=float(i), status="ok",
                        session_id="vscode-1", attrs={"workspace": "/home/alice/vn-project", "panel": "flow"})
            for i in range(5)]
    paths.extension_dir.mkdir(parents=True)
    (paths.extension_dir / "telemetry-2026-11-28.jsonl").write_bytes(
        b"".join(msgspec.json.encode(r) + b"\n" for r in recs))
    return recs


@pytest.fixture
def cli(subprocess_env):
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([console_script("branchpy"), "telemetry", *args], env=subprocess_env,
                              capture_output=True, text=True, timeout=120)
        if check:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    yield run
    subprocess.run([console_script("branchpy"), "telemetry", "daemon", "stop"], env=subprocess_env,
                   capture_output=True, timeout=60)


# --- the acceptance test ----------------------------------------------------------

def test_cli_export_of_concurrently_emitted_events_checks_out_field_by_field(
        emitted, extension_records, paths, tmp_path, cli):
    records = emitted + extension_records
    assert len(emitted) == WORKERS * PER_WORKER
    out = tmp_path / "rc-metrics.json"
    cli("export", "--output", str(out))
    assert out.exists()
    report_file = tmp_path / "rc-metrics.redactions.json"
    pkg = msgspec.json.decode(out.read_bytes())

    # valid against the published JSON Schema, and the strict Structs
    jsonschema.validate(pkg, package_json_schema())
    decode_package(out.read_bytes())

    # every event accounted for, by event_id, each field as the rules say
    by_id = {e["event_id"]: e for e in pkg["summary"]["events"]}
    assert len(by_id) == len(pkg["summary"]["events"]) == len(records)
    for rec in records:
        assert by_id[rec.event_id] == expected_event(rec), rec.event_id

    # aggregates, recomputed here
    check_aggregates(pkg, records)
    s = pkg["summary"]
    assert (s["part"], s["last_part"], s["skipped_lines"]) == (1, True, 0)
    assert (s["window_from"], s["window_to"]) == (None, None)

    # identity, platform, versions
    assert pkg["schema_version"] == "1.0.0"
    assert pkg["governance_id"] == load_or_create_governance_id(paths)
    assert set(pkg["platform"]) <= {"os", "os_release", "arch", "python"}
    parse_time(pkg["export_timestamp"])

    # redactions: counted per rule, pointers only, the same counts in the package and the report
    report = msgspec.json.decode(report_file.read_bytes())
    assert report["counts"] == s["redactions"] and sum(s["redactions"].values()) > len(records)
    assert s["redactions"]["email_address"] == sum(1 for r in records if "owner" in (r.attrs or {}))
    assert s["redactions"]["secret_field"] == sum(1 for r in records if "apiKey" in (r.attrs or {}))
    for f in report["findings"]:
        assert f["file"] == out.name and f["pointer"].startswith("/summary/events/")

    # nothing removed is anywhere in what we wrote
    assert_no_sensitive_bytes([out, report_file])

    # the preview says valid, and shows no removed value either
    preview = preview_file(out)
    assert preview["valid"] and preview["summary"]["event_count"] == len(records)
    text = render_preview_text(preview)
    assert "VALID" in text
    for value in SENSITIVE:
        assert value not in text


def test_a_window_over_the_cap_becomes_parts_that_together_hold_every_event(emitted, paths, tmp_path):
    cfg = load_config(None, env={}, overrides={"telemetry.max_upload_size_mb": 0.05})
    out = tmp_path / "big.json"
    result = export_window(paths, cfg, out, None, None)
    files = [Path(f) for f in result.files]
    assert len(files) >= 2 and not out.exists()
    seen = []
    for n, path in enumerate(files, start=1):
        assert path.name == f"big.part{n:03d}.json" and path.stat().st_size <= cfg.max_upload_bytes
        part = msgspec.json.decode(path.read_bytes())
        jsonschema.validate(part, package_json_schema())
        ids = [e["event_id"] for e in part["summary"]["events"]]
        check_aggregates(part, [r for r in emitted if r.event_id in set(ids)])
        assert part["summary"]["part"] == n and part["summary"]["last_part"] == (n == len(files))
        seen += ids
    assert sorted(seen) == sorted(r.event_id for r in emitted) and result.events == len(emitted)
    assert len(set(result.package_ids)) == len(files)
    report = msgspec.json.decode(Path(result.report_file).read_bytes())
    assert {f["file"] for f in report["findings"]} == {p.name for p in files}
    assert_no_sensitive_bytes([*files, Path(result.report_file)])


def test_malformed_and_partial_lines_are_counted_and_the_rest_exported(emitted, paths, tmp_path):
    with open(paths.active_spool, "ab") as fh:
        fh.write(b"\x00\xff garbage\n{\"v\": 1}\n[1, 2]\n")
    good = EventRecord(event_id=new_event_id(), ts=format_ts(parse_time("2026-11-28T02:00:00Z")),
                       category="command", source="cli", name="late")
    with open(paths.active_spool, "ab") as fh:
        fh.write(msgspec.json.encode(good) + b"\n" + b'{"v": 1, "event_id": "torn')
    out = tmp_path / "o.json"
    result = export_window(paths, load_config(None, env={}), out, None, None)
    pkg = decode_package(out.read_bytes())
    assert result.skipped_lines == pkg.summary.skipped_lines == 4
    assert {e.event_id for e in pkg.summary.events} == {r.event_id for r in emitted} | {good.event_id}


def test_the_window_selects_by_event_time(emitted, extension_records, paths, tmp_path):
    start = parse_time(extension_records[1].ts)
    end = parse_time(extension_records[3].ts)
    out = tmp_path / "w.json"
    export_window(paths, load_config(None, env={}), out, start, end)
    pkg = decode_package(out.read_bytes())
    assert [e.event_id for e in pkg.summary.events] == [r.event_id for r in extension_records[1:3]]
    assert pkg.usage_statistics.sources == {"extension": 2}


def test_preview_flags_a_tampered_package_by_pointer_without_echoing_the_value(emitted, paths, tmp_path):
    out = tmp_path / "t.json"
    export_window(paths, load_config(None, env={}), out, None, None)
    assert preview_file(out)["valid"]
    body = msgspec.json.decode(out.read_bytes())
    body["summary"]["events"][4].setdefault("attrs", {})["injected"] = "/home/mallory/.ssh/id_rsa"
    out.write_bytes(msgspec.json.encode(body))
    preview = preview_file(out)
    assert not preview["valid"]
    assert preview["violations"] == [{"pointer": "/summary/events/4/attrs/injected", "rule": "raw_path",
                                      "location": "value"}]
    text = render_preview_text(preview)
    assert "WOULD BE REJECTED" in text and "/summary/events/4/attrs/injected" in text
    assert "mallory" not in text and "mallory" not in json.dumps(preview)


def test_the_governance_id_is_stable_across_exports_and_changes_on_reset(emitted, paths, tmp_path):
    cfg = load_config(None, env={})
    export_window(paths, cfg, tmp_path / "a.json", None, None)
    export_window(paths, cfg, tmp_path / "b.json", None, None)
    a = decode_package((tmp_path / "a.json").read_bytes()).governance_id
    assert a == decode_package((tmp_path / "b.json").read_bytes()).governance_id
    new = reset_governance_id(paths)
    export_window(paths, cfg, tmp_path / "c.json", None, None)
    assert decode_package((tmp_path / "c.json").read_bytes()).governance_id == new != a
