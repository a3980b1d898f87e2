"""The published bridge protocol schema (client/vscode/schemas), checked with `jsonschema`."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jsonschema

SCHEMAS = Path(__file__).resolve().parents[2] / "client" / "vscode" / "schemas"


@functools.cache
def protocol_schema() -> dict:
    return json.loads((SCHEMAS / "bridge-protocol.schema.json").read_text())


@functools.cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    root = protocol_schema()
    return jsonschema.Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": root["$defs"]})


def message_schema_name(message: dict, direction: str) -> str:
    """The `$defs` entry a message must match: its type (a request, a result, progress),
    or telemetry.error for a reply to a line of no known type."""
    kind = message.get("type") if isinstance(message, dict) else None
    defs = protocol_schema()["$defs"]
    if direction == "send" or kind == "telemetry.progress" or (isinstance(kind, str) and kind in defs):
        return str(kind)
    return "telemetry.error"


def schema_errors(message: dict, direction: str) -> list[str]:
    name = message_schema_name(message, direction)
    if name not in protocol_schema()["$defs"]:
        return [f"no schema for {direction} type {name!r}"]
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
            for error in _validator(name).iter_errors(message)]


def assert_valid_message(message: dict, direction: str) -> None:
    errors = schema_errors(message, direction)
    assert not errors, f"{direction} {json.dumps(message)[:300]} breaks the protocol schema: {errors}"
