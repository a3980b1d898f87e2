"""`schema`: a published JSON Schema — the package, the bridge protocol, or the event record."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from branchpy_telemetry.client.contracts.schema import package_json_schema
from branchpy_telemetry.daemon.control.context import RequestContext
from branchpy_telemetry.daemon.control.handlers.args import parse_args


class SchemaArgs(msgspec.Struct, forbid_unknown_fields=True):
    document: Literal["package", "bridge", "event"] = "package"


def handle(ctx: RequestContext, args: dict[str, Any]) -> dict[str, Any]:
    spec = parse_args(args, SchemaArgs)
    if spec.document == "package":
        return package_json_schema()
    from branchpy_telemetry.daemon.control.bridge_schema import (  # lazy: imports every handler
        bridge_protocol_schema,
        event_record_schema,
    )

    return bridge_protocol_schema() if spec.document == "bridge" else event_record_schema()
