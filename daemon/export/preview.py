"""`preview FILE`: exactly what a package would send, checked like the server will.

`preview_file` decodes the file strictly against the schema (client.contracts.schema)
and runs the privacy rules' `find_violations` (the server's own check), then
applies the catalog as a server using it would (`declared.filter_package`:
what it would drop), and returns a JSON-able dict for the CLI and the bridge;
`render_preview_text` turns it into a review a person can read. Violations
carry a pointer and a rule, never the offending value. Given the export's
local record, it also lists the user's own event names that the export left
out as undeclared (they never left the machine).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import msgspec

from branchpy_telemetry.client.contracts.catalog import Catalog
from branchpy_telemetry.client.contracts.declared import filter_package
from branchpy_telemetry.client.contracts.errors import NotAPackageError, NotFoundError, StorageError
from branchpy_telemetry.client.contracts.privacy import attr_key_rule, check_string
from branchpy_telemetry.client.contracts.redaction import Finding, find_violations
from branchpy_telemetry.client.contracts.schema import decode_package
from branchpy_telemetry.client.contracts.timewindow import utcnow
from branchpy_telemetry.daemon.export.package_records import ExportRecord
from branchpy_telemetry.daemon.export.package_writer import report_path
from branchpy_telemetry.daemon.export.redaction_sidecar import read_sidecar


class PreviewWindow(msgspec.Struct, kw_only=True):
    from_: Any = msgspec.field(name="from")
    to: Any
    first_event: Any
    last_event: Any


class PreviewSummary(msgspec.Struct, kw_only=True):
    event_count: Any
    window: PreviewWindow
    part: Any
    last_part: Any
    skipped_lines: Any
    redactions: Any


class PreviewResult(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A package as the server will judge it. `valid`: it passes the schema and the privacy rules
    (then every field below follows the package schema; otherwise fields are as read, with each
    offending value replaced by a `[rejected: rule]` marker). `text` is the review for a person."""

    file: str
    bytes: int
    sha256: str
    valid: bool
    violations: list[Finding]
    schema_error: str | None
    package_id: Any
    schema_version: Any
    export_timestamp: Any
    branchpy_version: Any
    governance_id: Any
    platform: Any
    summary: PreviewSummary
    performance_metrics: Any
    usage_statistics: Any
    errors: Any
    correlation_ids: Any
    events: list[Any]
    redaction_report: dict[str, Any] | None  # the sidecar NAME.redactions.json: counts and pointers
    catalog: dict[str, Any] | None  # the package's catalog reference (id, revision, sha256)
    server_would_drop: dict[str, int] | None  # what a server with the configured catalog drops, per reason
    left_out: dict[str, int] | None  # this machine's own event names the export left out (never sent)
    send_command: str | None = None  # when valid: the command that sends exactly these bytes
    text: str


def preview_file(path: Path, catalog: Catalog | None = None, export: ExportRecord | None = None) -> dict:
    """The review of `path`; with `catalog`, what a server using it would drop; with the
    export's local `record`, the event names the export left out."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"no package file at {path}",
                            hint="run `branchpy telemetry export` first") from None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror}") from None
    schema_error = None
    server_drops = None
    try:
        package = decode_package(data)
        body = msgspec.to_builtins(package)
        if catalog is not None:
            server_drops = filter_package(package, catalog, utcnow().date())[1]
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        schema_error = _describe(exc)
        try:
            body = msgspec.json.decode(data)
        except msgspec.DecodeError:
            body = None
    if schema_error is not None:
        refuse_if_not_a_package(path, data, body)
    violations = [msgspec.structs.asdict(f) for f in find_violations(body)] if body is not None else []
    if violations:
        body = mask_violations(body, violations)
    doc = body if isinstance(body, dict) else {}
    summary = doc.get("summary") if isinstance(doc.get("summary"), dict) else {}
    events = summary.get("events") if isinstance(summary.get("events"), list) else []
    return {
        "file": str(path),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "valid": schema_error is None and not violations,
        "violations": violations,
        "schema_error": schema_error,
        "package_id": doc.get("package_id"),
        "schema_version": doc.get("schema_version"),
        "export_timestamp": doc.get("export_timestamp"),
        "branchpy_version": doc.get("branchpy_version"),
        "governance_id": doc.get("governance_id"),
        "platform": doc.get("platform"),
        "summary": {
            "event_count": summary.get("event_count", len(events)),
            "window": {"from": summary.get("window_from"), "to": summary.get("window_to"),
                       "first_event": summary.get("first_event_ts"),
                       "last_event": summary.get("last_event_ts")},
            "part": summary.get("part"),
            "last_part": summary.get("last_part"),
            "skipped_lines": summary.get("skipped_lines"),
            "redactions": summary.get("redactions"),
        },
        "performance_metrics": doc.get("performance_metrics"),
        "usage_statistics": doc.get("usage_statistics"),
        "errors": doc.get("errors"),
        "correlation_ids": doc.get("correlation_ids"),
        "events": events,
        "redaction_report": read_sidecar(report_path(path)),
        "catalog": summary.get("catalog"),
        "server_would_drop": server_drops,
        "left_out": dict(export.undeclared) if export is not None else None,
    }


PACKAGE_KEYS = ("schema_version", "package_id", "summary")


def refuse_if_not_a_package(path: Path, data: bytes, body: Any) -> None:
    """A file that is not a package at all gets one line saying what it is not (NotAPackageError),
    instead of a review of empty fields. A package with a wrong field is reviewed as usual."""
    if isinstance(body, dict) and any(key in body for key in PACKAGE_KEYS):
        return
    hint = "preview reads the package files `branchpy telemetry export` writes, e.g. rc-metrics.json"
    if path.name.endswith(".redactions.json"):
        package = path.name.removesuffix(".redactions.json") + ".json"
        raise NotAPackageError(f"{path} is a redaction report, not a package",
                               hint=f"it is shown with its package: branchpy telemetry preview {package}")
    if not data.strip():
        what = "it is empty"
    elif body is None:
        what = "it is not JSON"
    elif not isinstance(body, dict):
        what = f"it is a JSON {_json_kind(body)}, not an object"
    else:
        what = "it is a JSON object without the package's keys (" + ", ".join(PACKAGE_KEYS) + ")"
    raise NotAPackageError(f"{path} is not a telemetry package: {what}", hint=hint)


def _json_kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), "null")


_QUOTED = re.compile(r"'[^']*'|`[^`]*`")


def mask_violations(body: Any, violations: list[dict]) -> Any:
    """Replace each offending value (and rename each offending key) so that the
    preview shows where the problem is, never the offending text itself."""
    for v in violations:
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in v["pointer"].split("/")[1:]]
        if v.get("location") == "key":
            holder = _resolve(body, tokens)
            if isinstance(holder, dict):
                renamed = {}
                in_attrs = tokens[-1:] == ["attrs"]
                for n, (key, value) in enumerate(holder.items()):
                    bad = check_string(key) is not None or (in_attrs and attr_key_rule(key) is not None)
                    renamed[f"[rejected key {n}: {v['rule']}]" if bad else key] = value
                holder.clear()
                holder.update(renamed)
            continue
        target = _resolve(body, tokens)
        if isinstance(target, dict):  # a finding inside a mapping whose keys the sender chose
            for key, value in target.items():
                if isinstance(value, str) and check_string(value) is not None:
                    target[key] = f"[rejected: {v['rule']}]"
            continue
        if not tokens:
            continue
        parent = _resolve(body, tokens[:-1])
        last = tokens[-1]
        if isinstance(parent, dict) and last in parent:
            parent[last] = f"[rejected: {v['rule']}]"
        elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
            parent[int(last)] = f"[rejected: {v['rule']}]"
    return body


def _resolve(node: Any, tokens: list[str]) -> Any:
    for token in tokens:
        if isinstance(node, dict):
            node = node.get(token)
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


def _describe(exc: Exception) -> str:
    """msgspec names the place (`$.summary.events[3].attrs`); a value or key it
    quotes (`Invalid enum value '…'`, `unknown field `…``) is kept only when it
    passes the privacy rules, so a rejected path is never echoed."""
    def keep_or_hide(m: re.Match) -> str:
        inner = m.group(0)[1:-1]
        if inner.startswith("$") or check_string(inner) is None:
            return m.group(0)
        return m.group(0)[0] + "[redacted]" + m.group(0)[-1]

    return _QUOTED.sub(keep_or_hide, str(exc))


# --- text rendering ------------------------------------------------------------

def render_preview_text(preview: dict, *, max_events: int = 50) -> str:
    out: list[str] = []
    add = out.append
    s = preview.get("summary") or {}
    window = s.get("window") or {}
    add(f"Package {preview.get('file')}")
    add(f"  {preview.get('bytes')} bytes · sha256 {preview.get('sha256')}")
    add(f"  package_id {preview.get('package_id')} · schema {preview.get('schema_version')}"
        f" · exported {preview.get('export_timestamp')}")
    if s.get("part") is not None:
        add(f"  part {s.get('part')}{' (last)' if s.get('last_part') else ' (more parts follow)'}")
    add("")
    add("What leaves this machine:")
    plat = preview.get("platform") or {}
    add(f"  governance id   {preview.get('governance_id')}"
        "  (random install id; reset with `purge --reset-id`)")
    add(f"  platform        {plat.get('os')} {plat.get('os_release') or ''} {plat.get('arch')}"
        f" · python {plat.get('python')}")
    add(f"  branchpy        {preview.get('branchpy_version')}")
    add(f"  events          {s.get('event_count')}  window {window.get('from') or 'start'} → "
        f"{window.get('to') or 'now'}  (first {window.get('first_event')}, last {window.get('last_event')})")
    add(f"  skipped lines   {s.get('skipped_lines')}  (undecodable or partial lines, not sent)")
    add(f"  correlation ids {len(preview.get('correlation_ids') or [])}")
    add("")
    perf = preview.get("performance_metrics") or {}
    add("Performance (ms):")
    add(_table(["name", "count", "total", "mean", "p50", "p95", "max"],
               [[n, m.get("count"), m.get("total_ms"), m.get("mean_ms"), m.get("p50_ms"), m.get("p95_ms"),
                 m.get("max_ms")] for n, m in perf.items() if isinstance(m, dict)]))
    usage = preview.get("usage_statistics") or {}
    add("")
    add("Usage:")
    rows = [[group, key, n] for group in ("commands", "features", "categories", "sources", "statuses")
            for key, n in (usage.get(group) or {}).items()]
    add(_table(["group", "key", "count"], rows))
    add("")
    add("Errors (messages hashed; raw text never leaves the machine):")
    add(_table(["hash", "code", "type", "name", "count", "last seen"],
               [[_short(e.get("error_hash")), e.get("error_code"), e.get("error_type"), e.get("name"),
                 e.get("count"), e.get("last_seen")] for e in preview.get("errors") or []
                if isinstance(e, dict)]))
    events = preview.get("events") or []
    add("")
    add(f"Events ({len(events)}{f', first {max_events} shown' if len(events) > max_events else ''}):")
    add(_table(["ts", "category", "source", "name", "ms", "status", "error", "attrs"],
               [[e.get("ts"), e.get("category"), e.get("source"), e.get("name"), e.get("duration_ms"),
                 e.get("status"), e.get("error_code") or _short(e.get("error_hash")),
                 _attrs(e.get("attrs"))] for e in events[:max_events] if isinstance(e, dict)]))
    add("")
    catalog = preview.get("catalog") or {}
    add(f"Catalog: {catalog.get('id', '?')} {catalog.get('revision', '?')}"
        f"{' · sha256 ' + catalog['sha256'][:12] + '…' if catalog.get('sha256') else ''}"
        "  (only what it declares was exported; `branchpy telemetry catalog` lists it)")
    left_out = preview.get("left_out")
    if left_out:
        add("  left out, not in the catalog (never exported): "
            + ", ".join(f"{name} ×{n}" for name, n in sorted(left_out.items())))
    drops = preview.get("server_would_drop")
    if drops:
        add("  a server with the same catalog would drop: "
            + ", ".join(f"{reason}: {n}" for reason, n in sorted(drops.items())))
    add("")
    add("Redactions (removed before export; values are never recorded):")
    counts = s.get("redactions") or {}
    add("  " + (", ".join(f"{rule}: {n}" for rule, n in counts.items()) or "none"))
    report = preview.get("redaction_report")
    if report:
        findings = report.get("findings") or []
        shown = findings[:max_events]
        for f in shown:
            where = f"{f['file']}#{f.get('pointer')}" if f.get("file") else f.get("pointer")
            add(f"  {where}  {f.get('rule')} ({f.get('location', 'value')})")
        hidden = len(findings) - len(shown) + (report.get("findings_omitted") or 0)
        if hidden:
            add(f"  … {hidden} more findings (see the redaction report file)")
    add("")
    if preview.get("valid"):
        add("VALID: this package passes the schema and the privacy rules the server applies.")
        if preview.get("send_command"):
            add(f"send it: {preview['send_command']}")
    else:
        add("WOULD BE REJECTED by the server:")
        if preview.get("schema_error"):
            add(f"  schema: {preview['schema_error']}")
        for v in preview.get("violations") or []:
            add(f"  {v.get('pointer') or '/'}  {v.get('rule')} ({v.get('location')})")
    return "\n".join(out) + "\n"


def _short(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("sha256:"):
        return value[:19] + "…"
    return value


def _attrs(attrs: Any) -> str:
    if not isinstance(attrs, dict) or not attrs:
        return ""
    return " ".join(f"{k}={v}" for k, v in attrs.items())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return "  (none)"
    cells = [header] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)
