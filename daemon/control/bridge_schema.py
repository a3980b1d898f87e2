"""The VS Code bridge protocol as JSON Schema, generated from the Structs the code uses.

`bridge_protocol_schema()` is one JSON Schema (draft 2020-12) document
(`branchpy telemetry schema --bridge`; shipped as
`client/vscode/schemas/bridge-protocol.schema.json`). Its `$defs` hold, for
every message type T of the bridge (the `bridge_type` column of client/contracts/commands.py):

- `T`: the request `{"id", "type": T, "payload"}`, whose payload is the
  argument Struct the daemon's handler decodes (`PAYLOADS` below);
- `T.result`: the reply `{"id", "type": "T.result", "ok": true, "payload"}`
  with the handler's result Struct, or `"ok": false` with the error body;

plus `telemetry.progress` (progress of a request in flight) and
`telemetry.error` (the reply to a line that names no known type). The top
level accepts any of these messages. The payload Structs are referenced
from `$defs` by their class names.

`event_record_schema()` is the extension's JSONL line (the event record).
"""

from __future__ import annotations

from typing import Any

import msgspec

from branchpy_telemetry.client.contracts.commands import COMMAND_BY_BRIDGE_TYPE, COMMANDS
from branchpy_telemetry.client.contracts.event import EventRecord
from branchpy_telemetry.client.contracts.protocol import ErrorBody, ProgressUpdate
from branchpy_telemetry.daemon.control.handlers.args import NoArgs
from branchpy_telemetry.daemon.control.handlers.catalog import CatalogArgs, CatalogResult
from branchpy_telemetry.daemon.control.handlers.config_get import ConfigGetArgs, ConfigGetResult
from branchpy_telemetry.daemon.control.handlers.config_set import ConfigSetArgs, ConfigSetResult
from branchpy_telemetry.daemon.control.handlers.export import ExportArgs
from branchpy_telemetry.daemon.control.handlers.history import HistoryArgs, HistoryResult
from branchpy_telemetry.daemon.control.handlers.mode import ModeArgs, ModeResult
from branchpy_telemetry.daemon.control.handlers.preview import PreviewArgs
from branchpy_telemetry.daemon.control.handlers.purge import PurgeArgs, PurgeResult
from branchpy_telemetry.daemon.control.handlers.rotate import RotateResult
from branchpy_telemetry.daemon.control.handlers.status import StatusResult
from branchpy_telemetry.daemon.control.handlers.upload import UploadArgs
from branchpy_telemetry.daemon.delivery.consent_gate import ConsentArgs
from branchpy_telemetry.daemon.delivery.deliver import UploadResult
from branchpy_telemetry.daemon.export.exporter import ExportResult
from branchpy_telemetry.daemon.export.preview import PreviewResult
from branchpy_telemetry.daemon.scheduling.auto_job import AutoRunReport

DRAFT = "https://json-schema.org/draft/2020-12/schema"
PROTOCOL_TITLE = "BranchPy telemetry bridge protocol, version 1"
REF = "#/$defs/{name}"

# Daemon command -> (the argument Struct its handler decodes, the result it returns).
PAYLOADS: dict[str, tuple[Any, Any]] = {
    "status": (ConsentArgs, StatusResult),
    "export": (ExportArgs, ExportResult),
    "preview": (PreviewArgs, PreviewResult),
    "upload": (UploadArgs, UploadResult),
    "sync": (ConsentArgs, AutoRunReport),
    "mode": (ModeArgs, ModeResult),
    "config.get": (ConfigGetArgs, ConfigGetResult),
    "config.set": (ConfigSetArgs, ConfigSetResult),
    "rotate": (NoArgs, RotateResult),
    "history": (HistoryArgs, HistoryResult),
    "purge": (PurgeArgs, PurgeResult),
    "catalog": (CatalogArgs, CatalogResult),
}

MESSAGE_ID = {
    "description": "Chosen by the sender of a request and echoed in every message about it "
                   "(its result and its progress); null when the bridge could not read one.",
    "anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}],
}


def bridge_protocol_schema() -> dict[str, Any]:
    """Every message of the bridge protocol, in one JSON Schema document."""
    types = list(COMMAND_BY_BRIDGE_TYPE)
    check_payloads_cover_the_bridge()
    payload_types = [ErrorBody, ProgressUpdate]
    for kind in types:
        payload_types += PAYLOADS[COMMAND_BY_BRIDGE_TYPE[kind]]
    refs, components = msgspec.json.schema_components(payload_types, ref_template=REF)
    results = [PAYLOADS[COMMAND_BY_BRIDGE_TYPE[kind]][1] for kind in types] + [ErrorBody, ProgressUpdate]
    _require_what_is_always_sent(components, results)
    ref_of = dict(zip(map(_key, payload_types), refs, strict=True))
    defs: dict[str, Any] = {"MessageId": MESSAGE_ID}
    for kind in types:
        command = COMMAND_BY_BRIDGE_TYPE[kind]
        args, result = PAYLOADS[command]
        defs[kind] = _request(kind, command, ref_of[_key(args)], _has_required_fields(args))
        defs[kind + ".result"] = _result(kind, ref_of[_key(result)], ref_of[_key(ErrorBody)])
    defs["telemetry.progress"] = _progress(ref_of[_key(ProgressUpdate)])
    defs["telemetry.error"] = _error(ref_of[_key(ErrorBody)])
    messages = list(defs)[1:]
    return {
        "$schema": DRAFT,
        "title": PROTOCOL_TITLE,
        "description": "One JSON object per line. The extension writes requests to the bridge's stdin; "
                       "the bridge writes results, progress and errors to its stdout. "
                       "$defs names each message by its type.",
        "anyOf": [{"$ref": REF.format(name=name)} for name in messages],
        "$defs": _without_discriminators({**defs, **components}),
    }


def check_payloads_cover_the_bridge() -> None:
    """Raise LookupError unless PAYLOADS names exactly the commands the bridge offers."""
    offered = set(COMMAND_BY_BRIDGE_TYPE.values())
    missing = [t for t, cmd in COMMAND_BY_BRIDGE_TYPE.items() if cmd not in PAYLOADS]
    if missing:
        raise LookupError(f"no payload Structs for bridge type(s) {', '.join(missing)}")
    extra = sorted(set(PAYLOADS) - offered)
    if extra:
        raise LookupError(f"payload Structs for command(s) the bridge does not offer: {', '.join(extra)}")


def _without_discriminators(node: Any) -> Any:
    """msgspec marks tagged unions with OpenAPI's `discriminator`, which JSON Schema does not
    know; the `const` of each tag field already tells the members apart."""
    if isinstance(node, dict):
        return {k: _without_discriminators(v) for k, v in node.items() if k != "discriminator"}
    if isinstance(node, list):
        return [_without_discriminators(v) for v in node]
    return node


def event_record_schema() -> dict[str, Any]:
    """One line of the extension's JSONL files (the same record the CLI's spool holds)."""
    schema = msgspec.json.schema(EventRecord)
    return {
        "$schema": DRAFT,
        "title": "BranchPy telemetry event record (one JSONL line), version 1",
        "description": "The extension writes these with source \"extension\", one complete line per write, "
                       "into its globalStorage telemetry folder; the daemon reads them from there.",
        **schema,
    }


def _request(kind: str, command: str, payload_ref: dict, payload_required: bool) -> dict[str, Any]:
    return {
        "title": kind,
        "description": f"Request: runs the daemon's `{command}` command.",
        "type": "object",
        "properties": {"id": {"$ref": REF.format(name="MessageId")}, "type": {"const": kind},
                       "payload": payload_ref},
        "required": ["type", "payload"] if payload_required else ["type"],
        "additionalProperties": False,
    }


def _result(kind: str, result_ref: dict, error_ref: dict) -> dict[str, Any]:
    def envelope(ok: bool, payload_ref: dict) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"id": {"$ref": REF.format(name="MessageId")}, "type": {"const": kind + ".result"},
                           "ok": {"const": ok}, "payload": payload_ref},
            "required": ["id", "type", "ok", "payload"],
            "additionalProperties": False,
        }

    return {"title": kind + ".result", "description": f"The answer to a {kind} request.",
            "oneOf": [envelope(True, result_ref), envelope(False, error_ref)]}


# The commands that publish progress, in the command table's order (its `progress` column).
PROGRESS_COMMANDS = tuple(command.name for command in COMMANDS if command.progress)


def _progress(update_ref: dict) -> dict[str, Any]:
    return {
        "title": "telemetry.progress",
        "description": f"Progress of a long request in flight ({', '.join(PROGRESS_COMMANDS)}); "
                       "`id` is the request's.",
        "type": "object",
        "properties": {"id": {"$ref": REF.format(name="MessageId")}, "type": {"const": "telemetry.progress"},
                       "payload": update_ref},
        "required": ["id", "type", "payload"],
        "additionalProperties": False,
    }


def _error(error_ref: dict) -> dict[str, Any]:
    return {
        "title": "telemetry.error",
        "description": "The answer to a line the bridge cannot run: not JSON, not an object, no type "
                       "(type telemetry.error, id null unless one could be read) or an unknown type "
                       "(type: that type + \".result\").",
        "type": "object",
        "properties": {"id": {"$ref": REF.format(name="MessageId")}, "type": {"type": "string"},
                       "ok": {"const": False}, "payload": error_ref},
        "required": ["id", "type", "ok", "payload"],
        "additionalProperties": False,
    }


def _require_what_is_always_sent(components: dict[str, Any], result_types: list[Any]) -> None:
    """A result Struct without `omit_defaults` always encodes every field: say so (`required`),
    so that clients may rely on them; optional stays what may really be left out. A result
    may gain fields in a later version: clients must accept unknown ones."""
    for cls in _struct_classes(result_types):
        schema = components[cls.__name__]
        schema.pop("additionalProperties", None)
        if not cls.__struct_config__.omit_defaults:
            schema["required"] = list(schema.get("properties", {}))


def _struct_classes(types: list[Any]) -> list[type]:
    """Every Struct class reachable from `types` (fields, items, values, union members)."""
    found: dict[type, None] = {}

    def visit(info: Any) -> None:
        if isinstance(info, msgspec.inspect.StructType):
            if info.cls not in found:
                found[info.cls] = None
                for field in info.fields:
                    visit(field.type)
        elif isinstance(info, msgspec.inspect.UnionType):
            for member in info.types:
                visit(member)
        elif isinstance(info, msgspec.inspect.DictType):
            visit(info.value_type)
        elif hasattr(info, "item_type"):  # list, set, frozenset, variadic tuple
            visit(info.item_type)

    for info in msgspec.inspect.multi_type_info(types):
        visit(info)
    return list(found)


def _has_required_fields(spec: Any) -> bool:
    if not (isinstance(spec, type) and issubclass(spec, msgspec.Struct)):
        return False
    return any(field.required for field in msgspec.structs.fields(spec))


def _key(spec: Any) -> str:
    return repr(spec)
