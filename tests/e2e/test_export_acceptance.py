"""Acceptance: several processes emit events full of paths, user names and
script content — in undeclared event names, undeclared attrs, declared attrs
with values of the wrong type or range, statuses, session and correlation ids,
error codes, types and messages; `branchpy telemetry export` (CLI -> real
daemon) writes a package that is checked field by field against what the
bundled catalog (read here as a plain TOML file) and the rules allow: every
declared event accounted for, every undeclared one absent, aggregates and
redaction counts recomputed here independently, no removed value anywhere in
the output files, valid against the published JSON Schema. Plus: split parts under
a small cap, malformed lines, window filtering, the extension folder, preview
of a valid and of a tampered package, and the governance id.
"""

from __future__ import annotations

import builtins
import json
import math
import re
import subprocess
import sys
import tomllib
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path

import jsonschema
import msgspec
import pytest

from branchpy_telemetry.client.contracts.catalog import BUNDLED_CATALOG
from branchpy_telemetry.client.contracts.config import load_config
from branchpy_telemetry.client.contracts.error_hashing import hash_error_message
from branchpy_telemetry.client.contracts.event import EventRecord
from branchpy_telemetry.client.contracts.fixed_formats import keyed_ref_id
from branchpy_telemetry.client.contracts.privacy import check_string
from branchpy_telemetry.client.contracts.schema import decode_package, package_json_schema
from branchpy_telemetry.client.contracts.timewindow import format_ts, parse_time, utcnow
from branchpy_telemetry.client.emitter.stamping import new_event_id
from branchpy_telemetry.daemon.export.exporter import export_window
from branchpy_telemetry.daemon.export.preview import preview_file, render_preview_text
from branchpy_telemetry.daemon.identity import (
    load_or_create_governance_id,
    load_or_create_identity,
    reset_governance_id,
)

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
from branchpy_telemetry.client.emitter.emit import build_event, write_event
w, n = int(sys.argv[1]), int(sys.argv[2])
out = []
for i in range(n):
    kind = i % 6
    ms = float((w * 1000 + i * 37) % 997) + 0.5
    if kind == 0:
        rec = build_event("command", "analyze", duration_ms=ms, status="ok",
                          attrs={"file": f"/home/alice/proj{w}/game/script.rpy", "files_scanned": i,
                                 "flag_json": True, "mode": "full", "engine": "renpy-8.2"})
    elif kind == 1:
        rec = build_event("command", "lint", duration_ms=ms, status="error", session_id="vn-project-alice",
                          error={"code": "BP-E1042", "type": "FileNotFoundError",
                                 "message": f"[Errno 2] No such file or directory: "
                                            f"'C:\\Users\\bob\\Documents\\game{w}\\x{i}.rpy'"},
                          attrs={"win": "C:\\Users\\bob\\x.rpy", "count": i, "findings": i,
                                 "mode": "Documents"})
    elif kind == 2:
        rec = build_event("feature", "graph.open", duration_ms=ms, status="studio.example",
                          attrs={"dialogue": 'e "Hello there"\nmc "Hi, alice!"',
                                 "script": "label start:\n    scene bg room",
                                 "home": "~/x.rpy", "rel": "game/script.rpy", "zoom": 1.5,
                                 "nodes": True, "panel": "label start"})
    elif kind == 3:
        rec = build_event("command", "analyze", duration_ms=ms, correlation_id=f"corr-{w}-{i % 4}",
                          attrs={"note_text": "x" * 250, "unc": "\\\\fileserver\\share\\bob",
                                 "uri": "file:///home/alice/x.rpy", "/home/alice/as-key.rpy": 1,
                                 "engine": "\\\\fileserver\\share\\bob", "files": -1, "workers": 4,
                                 "owner": "alice.smith@studio.example", "apiKey": f"bpt_live_{w}x{i}zz"})
    elif kind == 4:
        rec = build_event("error", "load", status="error",
                          error={"code": "BP-E2001" if i % 12 == 4 else "E-fileserver-7",
                                 "type": "/home/alice/evil_type.py",
                                 "message": f"user alice failed at line {i}"},
                          attrs={"summary": "first line\nsecond line", "stage": "parse"})
    else:
        rec = build_event("command", "open /home/alice/secret.rpy", duration_ms=ms,
                          attrs={"version": "1.2.3", "mode": "fast", "owner": "alice.smith@studio.example",
                                 "npm": "pkg@1.2.3", "apiKey": f"bpt_live_{w}x{i}zz", "max_tokens": 9})
    assert write_event(rec)
    out.append(rec)
sys.stdout.buffer.write(b"".join(msgspec.json.encode(r) + b"\n" for r in out))
'''


# --- helpers: what the package must say, computed here from the raw records and the catalog file ----

CATALOG = tomllib.loads(BUNDLED_CATALOG.read_text(encoding="utf-8"))
DECLARED = {(e["category"], e["name"]): e.get("attrs", {}) for e in CATALOG["event"]
            if e["expires"] == "never" or date.fromisoformat(e["expires"]) >= utcnow().date()}
CODE_PATTERN = re.compile(CATALOG["errors"]["code_pattern"])
TYPE_MODULES = frozenset(CATALOG["errors"]["type_modules"])
STATUSES = {"ok", "error", "cancelled", "timeout", "skipped"}
REF_ID = re.compile("[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def install_key(paths) -> bytes:
    return bytes.fromhex(load_or_create_identity(paths)[1])


def attr_verdict(spec: dict | None, value) -> str | None:
    """None when the value may leave under its declaration, else the rule that drops it."""
    if spec is None:
        return "undeclared_attr"
    kind, lo, hi = spec["type"], spec.get("min", -math.inf), spec.get("max", math.inf)
    if kind == "bool":
        ok = type(value) is bool
    elif kind == "int":
        ok = type(value) is int and lo <= value <= hi
    elif kind == "float":
        ok = type(value) in (int, float) and math.isfinite(value) and lo <= value <= hi
    elif kind == "enum":
        ok = type(value) is str and value in spec["values"]
    elif kind == "pattern":
        if type(value) is str and re.fullmatch(spec["regex"], value) and check_string(value) is None:
            return None
        return (check_string(value) if type(value) is str else None) or "invalid_value"
    else:
        raise AssertionError(f"this test emits no {kind} attrs")
    return None if ok else "invalid_value"


def ref_id(value: str | None, key: bytes) -> str | None:
    """A session or correlation id as it leaves: its own form, or its keyed hash."""
    return value if value is None or REF_ID.fullmatch(value) else keyed_ref_id(value, key)


def expected_event(rec: EventRecord, key: bytes) -> dict | None:
    """The sanitized event, or None when the catalog does not declare it."""
    declared = DECLARED.get((rec.category, rec.name))
    if declared is None:
        return None
    attrs = {k: v for k, v in (rec.attrs or {}).items() if attr_verdict(declared.get(k), v) is None}
    err = rec.error
    out = {"event_id": rec.event_id, "ts": rec.ts, "category": rec.category, "source": rec.source,
           "name": rec.name, "duration_ms": rec.duration_ms,
           "status": rec.status if rec.status in STATUSES else None,
           "session_id": ref_id(rec.session_id, key), "correlation_id": ref_id(rec.correlation_id, key),
           "error_code": err.code if err and err.code and CODE_PATTERN.fullmatch(err.code) else None,
           "error_hash": hash_error_message(err.message or "", err.type, TYPE_MODULES)
           if err and (err.message or err.type) else None,
           "attrs": attrs}
    return {k: v for k, v in out.items() if v is not None and v != {}}


def expected_redactions(records: list[EventRecord]) -> Counter:
    """What the redaction report must count, per rule."""
    counts: Counter = Counter()
    for rec in records:
        declared = DECLARED.get((rec.category, rec.name))
        if declared is None:
            counts["undeclared_event"] += 1
            continue
        for k, v in (rec.attrs or {}).items():
            if (rule := attr_verdict(declared.get(k), v)) is not None:
                counts[rule] += 1
        counts["invalid_value"] += rec.status is not None and rec.status not in STATUSES
        code = rec.error.code if rec.error else None
        counts["invalid_value"] += code is not None and not CODE_PATTERN.fullmatch(code)
        for ref in (rec.session_id, rec.correlation_id):
            counts["keyed_id"] += ref is not None and not REF_ID.fullmatch(ref)
    return +counts


def public_type(error_type: str | None) -> str | None:
    """The types this test emits: a built-in exception leaves, a file path never does."""
    ok = error_type is not None and error_type.isidentifier()
    return error_type if ok and isinstance(getattr(builtins, error_type, None), type) else None


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def check_aggregates(pkg: dict, records: list[EventRecord], key: bytes) -> None:
    """`records` are the declared ones (those the package holds)."""
    expected = [expected_event(r, key) for r in records]
    assert None not in expected
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
            group = (e["error_hash"], e.get("error_code"), e["name"])
            groups[group].append(e["ts"])
            raw_type[group] = public_type(rec.error.type)
    got = {(s["error_hash"], s["error_code"], s["name"]): s for s in pkg["errors"]}
    assert set(got) == set(groups)
    for group, stamps in groups.items():
        s = got[group]
        assert (s["count"], s["first_seen"], s["last_seen"]) == (len(stamps), min(stamps), max(stamps))
        assert s["error_type"] == raw_type[group]
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
                        category="feature", source="extension", name="control-center.open",
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

    # every declared event accounted for, by event_id, each field as the catalog and the rules say;
    # the undeclared ones (a name holding a path) are not there at all
    key = install_key(paths)
    declared = [r for r in records if expected_event(r, key) is not None]
    assert len(records) - len(declared) == WORKERS * PER_WORKER // 6
    by_id = {e["event_id"]: e for e in pkg["summary"]["events"]}
    assert len(by_id) == len(pkg["summary"]["events"]) == len(declared)
    for rec in declared:
        assert by_id[rec.event_id] == expected_event(rec, key), rec.event_id

    # aggregates, recomputed here
    check_aggregates(pkg, declared, key)
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
    assert report["counts"] == s["redactions"] == dict(expected_redactions(records))
    assert set(s["redactions"]) == {"undeclared_event", "undeclared_attr", "invalid_value", "keyed_id",
                                    "raw_path"}
    for f in report["findings"]:
        assert f["file"] == out.name and f["pointer"].startswith("/summary/events/")
        if f["rule"] == "undeclared_attr":  # the attrs object: an undeclared key's name is never written
            assert f["pointer"].endswith("/attrs") and f["location"] == "key"

    # nothing removed is anywhere in what we wrote, nor an id in the form the caller gave it
    assert_no_sensitive_bytes([out, report_file], extra=["vscode-1", "corr-"])

    # the preview says valid, and shows no removed value either
    preview = preview_file(out)
    assert preview["valid"] and preview["summary"]["event_count"] == len(declared)
    text = render_preview_text(preview)
    assert "VALID" in text
    for value in SENSITIVE:
        assert value not in text


def test_a_window_over_the_cap_becomes_parts_that_together_hold_every_event(emitted, paths, tmp_path):
    cfg = load_config(None, env={}, overrides={"telemetry.max_upload_size_mb": 0.05})
    out = tmp_path / "big.json"
    result = export_window(paths, cfg, out, None, None)
    key = install_key(paths)
    files = [Path(f) for f in result.files]
    assert len(files) >= 2 and not out.exists()
    seen = []
    for n, path in enumerate(files, start=1):
        assert path.name == f"big.part{n:03d}.json" and path.stat().st_size <= cfg.max_upload_bytes
        part = msgspec.json.decode(path.read_bytes())
        jsonschema.validate(part, package_json_schema())
        ids = [e["event_id"] for e in part["summary"]["events"]]
        check_aggregates(part, [r for r in emitted if r.event_id in set(ids)], key)
        assert part["summary"]["part"] == n and part["summary"]["last_part"] == (n == len(files))
        seen += ids
    declared = [r.event_id for r in emitted if expected_event(r, key) is not None]
    assert sorted(seen) == sorted(declared) and result.events == len(declared)
    assert len(set(result.package_ids)) == len(files)
    report = msgspec.json.decode(Path(result.report_file).read_bytes())
    assert {f["file"] for f in report["findings"]} == {p.name for p in files}
    assert_no_sensitive_bytes([*files, Path(result.report_file)])


def test_malformed_and_partial_lines_are_counted_and_the_rest_exported(emitted, paths, tmp_path):
    with open(paths.active_spool, "ab") as fh:
        fh.write(b"\x00\xff garbage\n{\"v\": 1}\n[1, 2]\n")
    good = EventRecord(event_id=new_event_id(), ts=format_ts(parse_time("2026-11-28T02:00:00Z")),
                       category="command", source="cli", name="check")
    with open(paths.active_spool, "ab") as fh:
        fh.write(msgspec.json.encode(good) + b"\n" + b'{"v": 1, "event_id": "torn')
    out = tmp_path / "o.json"
    result = export_window(paths, load_config(None, env={}), out, None, None)
    pkg = decode_package(out.read_bytes())
    assert result.skipped_lines == pkg.summary.skipped_lines == 4
    key = install_key(paths)
    assert {e.event_id for e in pkg.summary.events} == {
        r.event_id for r in emitted if expected_event(r, key) is not None} | {good.event_id}


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
    # the pointer names the attrs object: a key inside it is the sender's choice, never spelled
    assert preview["violations"] == [{"pointer": "/summary/events/4/attrs", "rule": "raw_path",
                                      "location": "value"}]
    assert preview["events"][4]["attrs"]["injected"] == "[rejected: raw_path]"
    text = render_preview_text(preview)
    assert "WOULD BE REJECTED" in text and "/summary/events/4/attrs " in text
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
