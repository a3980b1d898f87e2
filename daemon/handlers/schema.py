"""`schema`: the package JSON Schema (DESIGN §6)."""

from __future__ import annotations

from typing import Any

from branchpy_telemetry.client.schema import package_json_schema

from ..context import RequestContext
from .args import NoArgs, parse_args


def handle(ctx: RequestContext, args: dict[str, Any]) -> dict[str, Any]:
    parse_args(args, NoArgs)
    return package_json_schema()
