"""Handlers are plain functions (ctx, args) -> result: called directly here, no sockets.

`call` turns a result into what the wire carries (a Struct result becomes its JSON form)."""

from __future__ import annotations

import json

import msgspec
import pytest

from branchpy_telemetry.client.contracts.config import load_config
from branchpy_telemetry.client.contracts.errors import (
    CatalogInvalidError,
    ConfigError,
    ConsentWithdrawnError,
    NotFoundError,
    UsageError,
)
from branchpy_telemetry.client.contracts.protocol import reply_decoder
from branchpy_telemetry.daemon.control.context import DaemonContext, RequestContext
from branchpy_telemetry.daemon.control.handlers import REGISTRY
from branchpy_telemetry.daemon.control.server import run_handler


@pytest.fixture
def daemon_ctx(paths) -> DaemonContext:
    return DaemonContext(paths=paths, config=load_config(paths.config_file), version="9.9.9", idle_timeout=60)


def call(daemon_ctx: DaemonContext, cmd: str, args: dict | None = None):
    return msgspec.to_builtins(REGISTRY[cmd](RequestContext(daemon_ctx, "req-1", cmd), args or {}))


def test_registry_names_exactly_the_table_commands_and_long_ones_run_in_background():
    from branchpy_telemetry.client.contracts.commands import BACKGROUND_COMMANDS, COMMAND_NAMES

    assert set(REGISTRY) == set(COMMAND_NAMES)
    assert {"export", "preview", "rotate"} <= BACKGROUND_COMMANDS


def test_status_reports_identity_locations_and_spool_usage(daemon_ctx, paths):
    paths.spool_dir.mkdir(parents=True)
    (paths.spool_dir / "events.jsonl").write_bytes(b"x" * 100)
    (paths.spool_dir / "events-20261128T000000000000-1.jsonl").write_bytes(b"y" * 50)
    result = call(daemon_ctx, "status")
    assert result["version"] == "9.9.9"
    assert result["mode"] == "manual" and result["idle_timeout_s"] == 60
    assert result["spool_files"] == 2 and result["spool_bytes"] == 150
    assert result["socket"] == paths.control_endpoint
    assert result["config_file"] == str(paths.config_file)
    assert result["log_file"] == str(paths.daemon_log)
    assert result["uptime_s"] >= 0
    msgspec.json.encode(result)  # JSON-able


def test_status_without_spool_folder_reports_zero(daemon_ctx):
    result = call(daemon_ctx, "status")
    assert (result["spool_files"], result["spool_bytes"]) == (0, 0)


def test_status_rejects_unknown_arguments(daemon_ctx):
    with pytest.raises(UsageError, match="unknown argument 'all'"):
        call(daemon_ctx, "status", {"all": True})


def test_config_set_persists_reloads_and_get_reads_it_back(daemon_ctx, paths):
    result = call(daemon_ctx, "config.set", {"key": "telemetry.auto.interval", "value": "2h"})
    assert result["value"] == "2h"
    assert "interval = \"2h\"" in paths.config_file.read_text()
    assert daemon_ctx.config.telemetry.auto.interval == "2h"
    assert call(daemon_ctx, "config.get", {"key": "telemetry.auto.interval"})["value"] == "2h"


def test_config_set_mode_auto_changes_the_daemon_mode(daemon_ctx):
    call(daemon_ctx, "config.set", {"key": "telemetry.mode", "value": "auto"})
    assert daemon_ctx.mode == "auto"


def test_config_get_without_key_returns_every_key_with_secrets_masked(daemon_ctx):
    call(daemon_ctx, "config.set", {"key": "telemetry.api_key", "value": "abcdefghijklmnop"})
    values = call(daemon_ctx, "config.get")["values"]
    assert values["telemetry.api_key"] == "abcd…"
    assert values["telemetry.mode"] == "manual"
    revealed = call(daemon_ctx, "config.get", {"reveal_secrets": True})["values"]
    assert revealed["telemetry.api_key"] == "abcdefghijklmnop"


@pytest.mark.parametrize("cmd,args", [
    ("config.get", {"key": "telemetry.colour"}),
    ("config.set", {"key": "telemetry.colour", "value": "red"}),
])
def test_unknown_config_key_is_config_invalid_naming_the_key(daemon_ctx, cmd, args):
    with pytest.raises(ConfigError, match="telemetry.colour") as caught:
        call(daemon_ctx, cmd, args)
    assert caught.value.code == "config_invalid"


def test_config_set_invalid_value_is_rejected_and_file_untouched(daemon_ctx, paths):
    with pytest.raises(ConfigError, match="telemetry.auto.interval"):
        call(daemon_ctx, "config.set", {"key": "telemetry.auto.interval", "value": "soon"})
    assert not paths.config_file.exists()


def test_schema_is_the_package_json_schema(daemon_ctx):
    from branchpy_telemetry.client.contracts.schema import package_json_schema

    assert call(daemon_ctx, "schema") == package_json_schema()


def test_shutdown_sets_the_shutdown_event(daemon_ctx):
    assert call(daemon_ctx, "shutdown")["stopping"] is True
    assert daemon_ctx.shutdown_event.is_set()


def test_emit_appends_one_event_line_to_the_spool(daemon_ctx, paths):
    result = call(daemon_ctx, "emit", {"category": "command", "name": "analyze", "duration_ms": 12,
                                       "status": "error", "error_code": "BP-E1",
                                       "error_message": "boom", "attrs": {"files": 3}})
    line = json.loads(paths.active_spool.read_text())
    assert line["event_id"] == result["event_id"]
    assert line["name"] == "analyze" and line["duration_ms"] == 12.0
    assert line["error"] == {"code": "BP-E1", "message": "boom"}
    assert line["attrs"] == {"files": 3}


def test_emit_with_bad_category_is_bad_arguments(daemon_ctx):
    with pytest.raises(UsageError, match="category"):
        call(daemon_ctx, "emit", {"category": "gossip", "name": "x"})


def test_emit_under_do_not_track_is_consent_withdrawn(daemon_ctx, monkeypatch, paths):
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    with pytest.raises(ConsentWithdrawnError):
        call(daemon_ctx, "emit", {"category": "command", "name": "x"})
    assert not paths.active_spool.exists()


@pytest.mark.parametrize("args,message", [
    ({"output": "relative.json"}, "absolute"),
    ({"output": "/tmp/x.json", "from": "last tuesday"}, "invalid"),
    ({"output": "/tmp/x.json", "from": "1h", "to": "2h"}, "empty window"),
    ({}, "missing argument 'output'"),
    ({"output": "/tmp/x.json", "window": "1h"}, "unknown argument 'window'"),
])
def test_export_bad_arguments_are_usage_errors(daemon_ctx, args, message):
    with pytest.raises(UsageError, match=message):
        call(daemon_ctx, "export", args)


def test_export_writes_a_package_and_reports_progress(daemon_ctx, tmp_path):
    call(daemon_ctx, "emit", {"category": "command", "name": "analyze", "duration_ms": 5})
    seen = []
    daemon_ctx.publish_progress = lambda rid, cmd, stage, done, total: seen.append((rid, cmd, done))
    result = call(daemon_ctx, "export", {"output": str(tmp_path / "pkg.json"), "from": "1h"})
    assert result["events"] == 1
    assert result["files"] and all(name.startswith(str(tmp_path)) for name in result["files"])
    assert all(rid == "req-1" and cmd == "export" for rid, cmd, _ in seen)


ONE_EVENT_CATALOG = """format = 1
id = "studio"
revision = "7"
[[event]]
category = "command"
name = "lint"
description = "Lint."
expires = "never"
owner = "studio-team"
[event.attrs]
rules = { type = "int", min = 0 }
"""


def context_with_catalog(paths, catalog) -> DaemonContext:
    return DaemonContext(paths=paths, config=load_config(paths.config_file, overrides={
        "telemetry.catalog": str(catalog)}), version="9.9.9", idle_timeout=60)


def test_catalog_describes_the_configured_catalog(daemon_ctx):
    result = call(daemon_ctx, "catalog")
    assert result["id"] == "branchpy" and result["errors"]["code_pattern"] == "^BP-E[0-9]{4}$"
    analyze = next(e for e in result["events"] if (e["category"], e["name"]) == ("command", "analyze"))
    assert analyze["description"] and analyze["owner"] and analyze["expires"] == "never"
    assert analyze["attrs"]["flag_json"] == {"type": "bool"}
    json.dumps(result)


def test_catalog_check_names_every_problem_by_its_entry_and_never_raises(daemon_ctx, tmp_path):
    good = tmp_path / "good.toml"
    good.write_text(ONE_EVENT_CATALOG)
    result = call(daemon_ctx, "catalog", {"check": str(good)})
    assert result["valid"] is True
    assert (result["id"], result["revision"], result["events"]) == ("studio", "7", 1)
    bad = tmp_path / "bad.toml"
    bad.write_text(ONE_EVENT_CATALOG.replace('"never"', '"someday"').replace('"int"', '"text"'))
    result = call(daemon_ctx, "catalog", {"check": str(bad)})
    assert result["valid"] is False and result["problems"]
    assert all("command/lint" in p["entry"] for p in result["problems"])
    missing = call(daemon_ctx, "catalog", {"check": str(tmp_path / "missing.toml")})
    assert missing["valid"] is False and missing["problems"]
    with pytest.raises(UsageError, match="absolute"):
        call(daemon_ctx, "catalog", {"check": "good.toml"})


def test_export_applies_the_catalog_the_config_names(paths, tmp_path):
    """Under a studio's own catalog only its events leave: `analyze`, declared by the bundled
    catalog but not by this one, is dropped whole and counted."""
    catalog = tmp_path / "studio.toml"
    catalog.write_text(ONE_EVENT_CATALOG)
    ctx = context_with_catalog(paths, catalog)
    call(ctx, "emit", {"category": "command", "name": "lint", "attrs": {"rules": 12, "files": 3}})
    call(ctx, "emit", {"category": "command", "name": "analyze", "attrs": {"files": 3}})
    result = call(ctx, "export", {"output": str(tmp_path / "pkg.json")})
    assert result["events"] == 1
    assert result["redactions"] == {"undeclared_attr": 1, "undeclared_event": 1}
    package = json.loads((tmp_path / "pkg.json").read_text())
    assert [(e["name"], e["attrs"]) for e in package["summary"]["events"]] == [("lint", {"rules": 12})]
    assert (package["summary"]["catalog"]["id"], package["summary"]["catalog"]["revision"]) == ("studio", "7")


def test_export_under_a_broken_catalog_is_catalog_invalid_and_writes_nothing(paths, tmp_path):
    catalog = tmp_path / "broken.toml"
    catalog.write_text(ONE_EVENT_CATALOG.replace("format = 1", "format = 2"))
    ctx = context_with_catalog(paths, catalog)
    call(ctx, "emit", {"category": "command", "name": "lint"})
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(CatalogInvalidError) as info:
        call(ctx, "export", {"output": str(out / "pkg.json")})
    assert info.value.code == "catalog_invalid" and "format" in info.value.message
    assert list(out.iterdir()) == []


def test_an_expired_event_is_no_longer_collected_and_only_the_local_preview_names_it(paths, tmp_path):
    """Collection ends after an event's date (2000-01-01: expired on any date this runs)."""
    catalog = tmp_path / "studio.toml"
    catalog.write_text(ONE_EVENT_CATALOG + ONE_EVENT_CATALOG[ONE_EVENT_CATALOG.index("[[event]]"):]
                       .replace('"lint"', '"graph"').replace('"never"', '"2000-01-01"'))
    ctx = context_with_catalog(paths, catalog)
    assert call(ctx, "catalog", {"check": str(catalog)})["expired"] == ["command/graph"]
    call(ctx, "emit", {"category": "command", "name": "lint", "attrs": {"rules": 1}})
    call(ctx, "emit", {"category": "command", "name": "graph", "attrs": {"rules": 2}})
    out = tmp_path / "pkg.json"
    result = call(ctx, "export", {"output": str(out)})
    assert (result["events"], result["redactions"]) == (1, {"expired_event": 1})
    for written in (out, tmp_path / "pkg.redactions.json"):
        assert b"graph" not in written.read_bytes()
    preview = call(ctx, "preview", {"file": str(out)})
    assert preview["left_out"] == {"command/graph": 1} and "command/graph ×1" in preview["text"]


def test_preview_says_what_a_server_with_the_configured_catalog_would_drop(daemon_ctx, paths, tmp_path):
    """Exported under the bundled catalog, reviewed under a studio's: its server would drop
    `analyze` (undeclared there) and the lint attr it does not declare."""
    call(daemon_ctx, "emit", {"category": "command", "name": "analyze", "attrs": {"files": 3}})
    call(daemon_ctx, "emit", {"category": "command", "name": "lint", "attrs": {"rules": 4, "files": 3}})
    out = tmp_path / "pkg.json"
    assert call(daemon_ctx, "export", {"output": str(out)})["events"] == 2
    assert call(daemon_ctx, "preview", {"file": str(out)})["server_would_drop"] == {}
    catalog = tmp_path / "studio.toml"
    catalog.write_text(ONE_EVENT_CATALOG)
    preview = call(context_with_catalog(paths, catalog), "preview", {"file": str(out)})
    assert preview["valid"] is True
    assert preview["server_would_drop"] == {"undeclared_event": 1, "undeclared_attr": 1}
    assert "a server with the same catalog would drop" in preview["text"]


def test_preview_of_a_missing_file_is_not_found(daemon_ctx, tmp_path):
    with pytest.raises(NotFoundError):
        call(daemon_ctx, "preview", {"file": str(tmp_path / "nope.json")})


def test_preview_of_a_relative_path_is_bad_arguments(daemon_ctx):
    with pytest.raises(UsageError, match="absolute"):
        call(daemon_ctx, "preview", {"file": "pkg.json"})


def test_error_boundary_turns_a_crash_into_internal_error_without_traceback(daemon_ctx):
    def crash(ctx, args):
        raise KeyError("secret internals")

    reply = reply_decoder.decode(run_handler(crash, RequestContext(daemon_ctx, "r-9", "boom"), {}))
    assert reply.ok is False and reply.id == "r-9" and reply.v == 1
    assert reply.error.code == "internal_error"
    assert "KeyError" in reply.error.message and "secret internals" not in reply.error.message


def test_error_boundary_keeps_code_message_and_hint_of_telemetry_errors(daemon_ctx):
    def refuse(ctx, args):
        raise NotFoundError("no such package", hint="export first")

    reply = reply_decoder.decode(run_handler(refuse, RequestContext(daemon_ctx, "r-1", "x"), {}))
    assert (reply.error.code, reply.error.message, reply.error.hint) == ("not_found", "no such package",
                                                                         "export first")


def test_error_boundary_reports_an_unencodable_result_as_internal_error(daemon_ctx):
    reply = reply_decoder.decode(run_handler(lambda ctx, args: {"x": object()},
                                             RequestContext(daemon_ctx, "r-2", "x"), {}))
    assert reply.ok is False and reply.error.code == "internal_error"


def test_a_mode_the_schedule_refuses_leaves_the_file_and_the_schedule_as_they_were(daemon_ctx, paths):
    """The interval passes the config's checks, but this scheduler's floor (one hour, a constructor
    argument) refuses it: `mode` undoes its write, and nothing says auto with nothing scheduled."""
    from branchpy_telemetry.daemon.scheduling.scheduler import AutoModeScheduler

    daemon_ctx.scheduler = AutoModeScheduler(interval_floor_s=3600)
    try:
        call(daemon_ctx, "config.set", {"key": "telemetry.auto.interval", "value": "2h"})
        before = paths.config_file.read_bytes()
        with pytest.raises(UsageError, match="interval"):
            call(daemon_ctx, "mode", {"mode": "auto", "interval": "30m"})
        assert paths.config_file.read_bytes() == before
        assert daemon_ctx.config.telemetry.mode == "manual" and daemon_ctx.auto_problem is None
        status = call(daemon_ctx, "status")
        assert status["mode"] == "manual" and status["auto"]["scheduled"] is False
        ok = call(daemon_ctx, "mode", {"mode": "auto"})  # 2h: above this scheduler's floor
        assert ok["mode"] == "auto" and call(daemon_ctx, "status")["auto"]["scheduled"] is True
    finally:
        daemon_ctx.scheduler.shutdown(wait=False)


def test_auto_mode_configured_but_not_scheduled_says_why_in_status(daemon_ctx):
    call(daemon_ctx, "config.set", {"key": "telemetry.mode", "value": "auto"})
    try:
        daemon_ctx.scheduler.stop()  # the job is gone, the config still says auto
        auto = call(daemon_ctx, "status")["auto"]
        assert auto["scheduled"] is False and auto["not_scheduled_because"] == "the schedule has not started"
    finally:
        daemon_ctx.scheduler.shutdown(wait=False)
