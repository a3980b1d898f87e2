"""The client half of the privacy acceptance suite: planting the corpus where events come from.

Three ways in, each with every position it offers:
- the Python API (`emit()`, `track()`), driven by a real child process;
- raw lines written by hand into the CLI spool, as a buggy or hostile writer would;
- raw lines in the VS Code extension's folder (`BRANCHPY_TELEMETRY_HOME/extension`).

Each planted event carries a tag (32 hex digits, a valid correlation id the
exporter keeps as it is; in the session id when the correlation id is the
position under test), so a value found in the package can be traced to the
position it was planted in.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path

from .privacy_corpus import Benign, Sensitive

API_POSITIONS = (
    "api.attr.enum_value", "api.attr.int_value", "api.attr.pattern_value", "api.attr.version_value",
    "api.attr.undeclared_value", "api.attr.key", "api.attr.key_of_text", "api.name", "api.status",
    "api.session_id", "api.correlation_id", "api.error.code", "api.error.type", "api.error.message",
    "api.track.name", "api.track.exc_code", "api.track.exc_type", "api.track.exc_message",
)
LINE_FIELDS = (
    "event_id", "ts", "category", "source", "name", "status", "session_id", "correlation_id", "v",
    "duration_ms", "error.code", "error.type", "error.message", "error.extra_field", "attr.declared_value",
    "attr.undeclared_value", "attr.key", "attr.nested_value", "attr.list_value", "extra_field.value",
    "extra_field.key", "extra_field.nested",
)
LINE_SOURCES = ("spool", "extension")
LINE_POSITIONS = tuple(f"{source}.{f}" for source in LINE_SOURCES for f in LINE_FIELDS)
EXPORT_POSITIONS = API_POSITIONS + LINE_POSITIONS
# lines the reader cannot decode (skipped and counted), and events dropped whole as undeclared
UNDECODABLE_FIELDS = frozenset({"ts", "category", "source", "v", "duration_ms"})
UNDECLARED_POSITIONS = frozenset({"api.name", "api.track.name", "spool.name", "extension.name"})
BENIGN_POSITIONS = ("api.benign", "spool.benign")


def tag(key: str, position: str) -> str:
    return hashlib.sha256(f"{key}|{position}".encode()).hexdigest()[:32]


def keeps_event(position: str) -> bool:
    """Whether the planted event itself must come out (only the planted value removed)."""
    return position not in UNDECLARED_POSITIONS and position.split(".", 1)[1] not in UNDECODABLE_FIELDS


CHILD = r'''
import json, sys
from branchpy_telemetry.client import emit, track
from branchpy_telemetry.client.emitter.emit import emitter_stats

plan = json.load(open(sys.argv[1], encoding="utf-8"))

def tracked(tag, make_exc):
    try:
        with track("analyze", correlation_id=tag):
            raise make_exc()
    except Exception:
        pass

def exc_with_code(v):
    exc = RuntimeError("the operation failed")
    exc.code = v
    return exc

def plant(position, v, tag):
    c = {"correlation_id": tag}
    error = {"code": "BP-E1042", "type": "ValueError", "message": "bad input"}
    if position == "api.attr.enum_value": emit("command", "analyze", attrs={"mode": v}, **c)
    elif position == "api.attr.int_value": emit("command", "analyze", attrs={"files": v}, **c)
    elif position == "api.attr.pattern_value": emit("command", "analyze", attrs={"engine": v}, **c)
    elif position == "api.attr.version_value": emit("command", "doctor", attrs={"engine_version": v}, **c)
    elif position == "api.attr.undeclared_value": emit("command", "analyze", attrs={"workspace": v}, **c)
    elif position == "api.attr.key": emit("command", "analyze", attrs={v: 1}, **c)
    elif position == "api.attr.key_of_text": emit("command", "analyze", attrs={v: "fast"}, **c)
    elif position == "api.name": emit("command", v, duration_ms=3.0, **c)
    elif position == "api.status": emit("command", "analyze", status=v, **c)
    elif position == "api.session_id": emit("command", "analyze", session_id=v, **c)
    elif position == "api.correlation_id": emit("command", "analyze", correlation_id=v, session_id=tag)
    elif position == "api.error.code":
        emit("command", "analyze", status="error", error={**error, "code": v}, **c)
    elif position == "api.error.type":
        emit("command", "analyze", status="error", error={**error, "type": v}, **c)
    elif position == "api.error.message":
        emit("command", "analyze", status="error", error={**error, "message": v}, **c)
    elif position == "api.track.name":
        with track(v, correlation_id=tag):
            pass
    elif position == "api.track.exc_code": tracked(tag, lambda: exc_with_code(v))
    elif position == "api.track.exc_type": tracked(tag, lambda: type(v, (Exception,), {})("it failed"))
    elif position == "api.track.exc_message": tracked(tag, lambda: ValueError(f"could not open {v}"))
    elif position == "api.benign":
        category, name, field, value = v
        if field == "status": emit(category, name, status=value, **c)
        elif field == "error_code":
            emit(category, name, status="error", error={**error, "code": value}, **c)
        elif field == "error_type":
            emit(category, name, status="error", error={**error, "type": value}, **c)
        else: emit(category, name, attrs={field: value}, **c)
    else:
        raise SystemExit(f"unknown position {position}")

written = []
for position, v, tag in plan:
    before = emitter_stats()["emitted"]
    plant(position, v, tag)
    written.append(emitter_stats()["emitted"] == before + 1)
print(json.dumps(written))
'''


def plant_through_api(env: dict[str, str], workdir: Path, sensitive: list[Sensitive],
                      benign: list[Benign]) -> dict[tuple[str, str], bool]:
    """Run the child; returns (key, position) -> whether an event was written."""
    plan = [(p, s.value, tag(s.id, p)) for s in sensitive for p in API_POSITIONS]
    plan += [("api.benign", (b.category, b.name, b.field, b.value), tag(b.id, "api.benign")) for b in benign]
    keys = [(s.id, p) for s in sensitive for p in API_POSITIONS] + [(b.id, "api.benign") for b in benign]
    plan_file = workdir / "plan.json"
    plan_file.write_text(json.dumps(plan, ensure_ascii=False), encoding="utf-8")
    child = subprocess.run([sys.executable, "-c", CHILD, str(plan_file)], env=env, capture_output=True,
                           text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    return dict(zip(keys, json.loads(child.stdout), strict=True))


def hand_written_line(field: str, value: object, tag_: str, source: str, ts: str) -> dict:
    """An otherwise valid line of a declared event with `value` put at `field`."""
    line: dict = {"v": 1, "event_id": str(uuid.uuid4()), "ts": ts, "category": "command", "source": source,
                  "name": "analyze", "duration_ms": 3.0, "status": "ok", "session_id": uuid.uuid4().hex,
                  "correlation_id": tag_, "attrs": {"files": 1}}
    error = {"code": "BP-E1042", "type": "ValueError", "message": "bad input"}
    if field in ("event_id", "ts", "category", "source", "name", "status", "session_id", "v", "duration_ms"):
        line[field] = value
    elif field == "correlation_id":
        line.update(correlation_id=value, session_id=tag_)
    elif field.startswith("error."):
        key = field.split(".", 1)[1]
        line.update(status="error", error={**error, ("detail" if key == "extra_field" else key): value})
    elif field == "attr.declared_value":
        line["attrs"] = {"mode": value}
    elif field == "attr.undeclared_value":
        line["attrs"] = {"files": 1, "workspace": value}
    elif field == "attr.key":
        line["attrs"] = {"files": 1, value: 1}
    elif field == "attr.nested_value":  # declared int: a dict is the wrong type
        line["attrs"] = {"files": {"value": value}}
    elif field == "attr.list_value":
        line["attrs"] = {"files": [value]}
    elif field == "extra_field.value":
        line["note"] = value
    elif field == "extra_field.key":
        line[value] = 1
    elif field == "extra_field.nested":
        line["meta"] = {"user": value, "labels": [value]}
    else:
        raise AssertionError(f"unknown line field {field}")
    return line


def benign_line(b: Benign, tag_: str, ts: str) -> dict:
    line = hand_written_line("status", "ok", tag_, "cli", ts)
    line.update(category=b.category, name=b.name)
    if b.field == "status":
        line.update(status=b.value, attrs={})
    elif b.field in ("error_code", "error_type"):
        line.update(status="error", attrs={},
                    error={"code": "BP-E1042", "type": "ValueError", "message": "bad input",
                           b.field.split("_")[1]: b.value})
    else:
        line["attrs"] = {b.field: b.value}
    return line


def write_lines(spool_file: Path, extension_dir: Path, sensitive: list[Sensitive], benign: list[Benign],
                ts: str) -> dict[str, int]:
    """Append hand-written lines to the spool and write the extension's file; returns lines per source."""
    lines: dict[str, list[bytes]] = {"spool": [], "extension": []}
    for source, ascii_only in (("spool", False), ("extension", True)):
        for s in sensitive:
            for f in LINE_FIELDS:
                position = f"{source}.{f}"
                record = hand_written_line(f, s.value, tag(s.id, position), "cli" if source == "spool"
                                           else "extension", ts)
                lines[source].append(json.dumps(record, ensure_ascii=ascii_only).encode() + b"\n")
    for b in benign:
        lines["spool"].append(json.dumps(benign_line(b, tag(b.id, "spool.benign"), ts)).encode() + b"\n")
    with open(spool_file, "ab") as fh:
        fh.write(b"".join(lines["spool"]))
    extension_dir.mkdir(parents=True, exist_ok=True)
    (extension_dir / "telemetry-corpus.jsonl").write_bytes(b"".join(lines["extension"]))
    return {source: len(v) for source, v in lines.items()}
