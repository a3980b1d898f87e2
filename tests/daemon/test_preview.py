"""preview: the server's checks, locally; a tampered package is caught without echoing values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from branchpy_telemetry.client.contracts.catalog import load_catalog
from branchpy_telemetry.client.contracts.config import load_config
from branchpy_telemetry.client.contracts.errors import NotAPackageError, NotFoundError
from branchpy_telemetry.client.contracts.event import ErrorInfo, EventRecord
from branchpy_telemetry.client.contracts.timewindow import format_ts
from branchpy_telemetry.client.emitter.stamping import new_event_id
from branchpy_telemetry.daemon.export.exporter import export_window
from branchpy_telemetry.daemon.export.package_records import find_export_record
from branchpy_telemetry.daemon.export.preview import preview_file, render_preview_text

T0 = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
SECRET = "/home/alice/game/secret_route.rpy"
SESSION = "b3aa7efe4458a885ab9099a435a240ae"


@pytest.fixture
def exported(paths, tmp_path):
    """Three declared `analyze` events whose declared text attr `engine` holds a path (the
    first with an error whose message holds it), one with an undeclared attr, and one
    undeclared event named after the user's file."""
    recs = [EventRecord(event_id=new_event_id(), ts=format_ts(T0 + timedelta(seconds=i)), category="command",
                        source="cli", name="analyze", duration_ms=10.0 * i, status="ok" if i else "error",
                        session_id=SESSION, error=ErrorInfo(code="BP-E0001", message=f"no {SECRET}")
                        if i == 0 else None, attrs={"engine": SECRET, "files_scanned": i}) for i in range(3)]
    recs[1].attrs["secret_route_notes"] = 4
    recs.append(EventRecord(event_id=new_event_id(), ts=format_ts(T0 + timedelta(seconds=3)),
                            category="command", source="cli", name="secret_route", session_id=SESSION,
                            attrs={"files_scanned": 1}))
    paths.spool_dir.mkdir(parents=True)
    paths.active_spool.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in recs))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = export_window(paths, load_config(None, env={}), out_dir / "pkg.json", None, None)
    return out_dir / "pkg.json", result


COUNTS = {"raw_path": 3, "undeclared_attr": 1, "undeclared_event": 1}


def test_preview_of_an_exported_package_is_valid_and_shows_everything_sent(exported):
    path, result = exported
    p = preview_file(path, load_catalog())
    assert p["valid"] is True and p["violations"] == [] and p["schema_error"] is None
    assert p["package_id"] == result.package_ids[0] and p["bytes"] == path.stat().st_size
    assert p["summary"]["event_count"] == 3 and len(p["events"]) == 3
    assert p["summary"]["redactions"] == COUNTS == result.redactions
    assert p["performance_metrics"]["analyze"]["count"] == 3
    assert p["errors"][0]["error_code"] == "BP-E0001"
    assert [e["attrs"] for e in p["events"]] == [{"files_scanned": i} for i in range(3)]
    assert p["redaction_report"]["counts"] == COUNTS
    assert {(f["pointer"], f["rule"], f["location"]) for f in p["redaction_report"]["findings"]} == {
        *((f"/summary/events/{i}/attrs/engine", "raw_path", "value") for i in range(3)),
        ("/summary/events/1/attrs", "undeclared_attr", "key")}
    assert p["catalog"]["id"] == "branchpy" and p["server_would_drop"] == {}
    assert p["left_out"] is None  # without the export's local record
    json.dumps(p)  # JSON-able for the bridge and --json
    text = render_preview_text(p)
    assert "VALID" in text and "WOULD BE REJECTED" not in text
    assert "/summary/events/0/attrs/engine" in text and "raw_path" in text and "undeclared_event: 1" in text
    for shown in (text, json.dumps(p), path.read_bytes().decode(), Path(result.report_file).read_text()):
        assert "alice" not in shown and "secret_route" not in shown


def test_preview_names_the_users_own_left_out_events_from_the_local_export_record(exported, paths):
    """Only this machine's preview shows which of the user's event names were left out: they
    are in the local export record, never in the package or its report."""
    path, _ = exported
    p = preview_file(path, load_catalog(), find_export_record(paths.exports_file, path))
    assert p["left_out"] == {"command/secret_route": 1}
    assert "command/secret_route ×1" in render_preview_text(p)


def test_preview_of_a_tampered_package_names_the_pointer_but_never_the_value(exported):
    path, _ = exported
    body = msgspec.json.decode(path.read_bytes())
    body["summary"]["events"][1]["attrs"]["where"] = "C:\\Users\\bob\\Documents\\x.rpy"
    body["summary"]["events"][2]["name"] = "open ~/notes/plan.rpy"
    path.write_bytes(msgspec.json.encode(body))
    p = preview_file(path)
    assert p["valid"] is False and p["schema_error"] is None
    # a finding inside attrs points at the attrs object: the key is the sender's choice, never spelled
    assert {(v["pointer"], v["rule"]) for v in p["violations"]} == {
        ("/summary/events/1/attrs", "raw_path"), ("/summary/events/2/name", "raw_path")}
    text = render_preview_text(p)
    assert "WOULD BE REJECTED" in text and "/summary/events/1/attrs " in text
    assert p["events"][1]["attrs"]["where"] == "[rejected: raw_path]"
    for shown in (json.dumps(p), text):
        assert "bob" not in shown and "plan.rpy" not in shown


def test_preview_of_a_schema_breaking_package_reports_where_without_the_value(exported):
    path, _ = exported
    body = msgspec.json.decode(path.read_bytes())
    body["summary"]["events"][0]["category"] = "/home/carol/x.rpy"
    body["surprise"] = 1
    path.write_bytes(msgspec.json.encode(body))
    p = preview_file(path)
    assert p["valid"] is False and p["schema_error"]
    assert "carol" not in p["schema_error"]
    assert any(v["pointer"] == "/summary/events/0/category" for v in p["violations"])
    assert "WOULD BE REJECTED" in render_preview_text(p)
    assert "carol" not in json.dumps(p) and "carol" not in render_preview_text(p)


def test_preview_masks_an_offending_key_without_spelling_it(exported):
    path, _ = exported
    body = msgspec.json.decode(path.read_bytes())
    body["summary"]["events"][0]["attrs"]["/home/dave/x.rpy"] = 1
    body["summary"]["events"][0]["attrs"]["script_text"] = "ok"
    path.write_bytes(msgspec.json.encode(body))
    p = preview_file(path)
    assert p["valid"] is False
    assert {(v["pointer"], v["rule"], v["location"]) for v in p["violations"]} >= {
        ("/summary/events/0/attrs", "raw_path", "key")}
    attrs = p["events"][0]["attrs"]
    assert "script_text" not in attrs and not any("dave" in k for k in attrs)
    assert "dave" not in json.dumps(p) and "dave" not in render_preview_text(p)


@pytest.mark.parametrize(("content", "name", "says"), [
    (b"\x00not json", "junk.json", "is not a telemetry package: it is not JSON"),
    (b"", "empty.json", "is not a telemetry package: it is empty"),
    (b"[1, 2]", "list.json", "is not a telemetry package: it is a JSON array, not an object"),
    (b'{"name": "x"}', "other.json", "it is a JSON object without the package's keys"),
    (b'{"findings": []}', "rc.redactions.json", "is a redaction report, not a package"),
])
def test_preview_of_a_file_that_is_not_a_package_says_what_it_is_not(tmp_path, content, name, says):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(NotAPackageError, match=says) as caught:
        preview_file(path)
    assert caught.value.code == "not_a_package" and caught.value.exit_code == 4 and caught.value.hint


def test_a_package_with_a_wrong_field_is_still_reviewed_in_full(tmp_path):
    path = tmp_path / "broken.json"
    path.write_bytes(b'{"schema_version": "1.0.0", "package_id": "not-a-uuid"}')
    p = preview_file(path)
    assert p["valid"] is False and p["schema_error"]
    assert "WOULD BE REJECTED" in render_preview_text(p)


def test_preview_of_a_missing_file_is_not_found(tmp_path):
    with pytest.raises(NotFoundError):
        preview_file(tmp_path / "missing.json")


def test_preview_text_caps_the_event_list(exported):
    path, _ = exported
    text = render_preview_text(preview_file(path), max_events=1)
    assert "Events (3, first 1 shown)" in text
