"""The bridge protocol's published JSON Schemas: generated from the Structs the
daemon uses, shipped as files, printed by the CLI, and the protocol page's
examples valid against them."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest

from branchpy_telemetry.client.contracts.commands import COMMAND_BY_BRIDGE_TYPE
from branchpy_telemetry.daemon.control.bridge_schema import bridge_protocol_schema, event_record_schema

from ..conftest import console_script
from .protocol_schema import SCHEMAS, schema_errors

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "bridge-protocol.md"
REGENERATE = "branchpy telemetry schema --bridge > client/vscode/schemas/bridge-protocol.schema.json " \
             "(and --event > event-record.schema.json)"


def shipped(name: str) -> dict:
    return json.loads((SCHEMAS / name).read_text())


def test_the_shipped_schema_files_are_what_the_code_generates():
    assert shipped("bridge-protocol.schema.json") == bridge_protocol_schema(), f"regenerate: {REGENERATE}"
    assert shipped("event-record.schema.json") == event_record_schema(), f"regenerate: {REGENERATE}"


def test_the_schemas_are_valid_draft_2020_12_and_cover_every_bridge_type():
    protocol = bridge_protocol_schema()
    jsonschema.Draft202012Validator.check_schema(protocol)
    jsonschema.Draft202012Validator.check_schema(event_record_schema())
    defs = protocol["$defs"]
    for kind in COMMAND_BY_BRIDGE_TYPE:
        assert defs[kind]["properties"]["type"] == {"const": kind}
        assert defs[kind + ".result"]["oneOf"][0]["properties"]["type"] == {"const": kind + ".result"}
    assert {"telemetry.progress", "telemetry.error"} <= set(defs)


def test_the_cli_prints_the_bridge_and_event_schemas(running_daemon, subprocess_env):
    def schema(*flags: str) -> dict:
        out = subprocess.run([console_script("branchpy"), "telemetry", "schema", *flags], env=subprocess_env,
                             capture_output=True, text=True, timeout=60, check=True).stdout
        return json.loads(out)

    assert schema("--bridge") == shipped("bridge-protocol.schema.json")
    assert schema("--event") == shipped("event-record.schema.json")
    assert schema()["title"].startswith("BranchPy telemetry package")
    both = subprocess.run([console_script("branchpy"), "telemetry", "schema", "--bridge", "--event"],
                          env=subprocess_env, capture_output=True, text=True, timeout=60)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def page_examples() -> list[dict]:
    blocks = re.findall(r"```json\n(.*?)```", PAGE.read_text(), flags=re.S)
    return [json.loads(block) for block in blocks]


def test_every_example_on_the_protocol_page_matches_the_schema():
    examples = page_examples()
    messages = [m for m in examples if "type" in m and "event_id" not in m]
    requests = [m for m in messages if not (m["type"].endswith(".result") or m["type"] in
                                            ("telemetry.progress", "telemetry.error"))]
    for message in messages:
        direction = "send" if message in requests else "receive"
        assert schema_errors(message, direction) == [], message
    assert {m["type"] for m in requests} == set(COMMAND_BY_BRIDGE_TYPE), "one request example per type"
    assert {m["type"] for m in messages} >= {t + ".result" for t in COMMAND_BY_BRIDGE_TYPE}, \
        "one result per type"
    [line] = [m for m in examples if "event_id" in m]
    jsonschema.validate(line, event_record_schema())
    assert line["source"] == "extension"


@pytest.mark.parametrize(("message", "direction"), [
    ({"id": "1", "type": "telemetry.export", "payload": {}}, "send"),  # output is required
    ({"id": "1", "type": "telemetry.status", "payload": {"verbose": True}}, "send"),
    ({"id": "1", "type": "telemetry.setMode", "payload": {"mode": "sometimes"}}, "send"),
    ({"id": "1", "type": "telemetry.upload", "payload": {"consent": "maybe"}}, "send"),
    ({"id": "1", "type": "telemetry.status", "extra": 1}, "send"),
    ({"id": "1", "type": "telemetry.status.result", "ok": True, "payload": {"version": "0.1.0"}}, "receive"),
    ({"id": "1", "type": "telemetry.rotate.result", "ok": False, "payload": {"message": "no"}}, "receive"),
    ({"id": "1", "type": "telemetry.progress", "payload": {"done": 3}}, "receive"),
    ({"type": "telemetry.error", "ok": False, "payload": {"code": "x", "message": "y"}}, "receive"),  # no id
])
def test_the_schema_refuses_malformed_messages(message, direction):
    assert schema_errors(message, direction)
