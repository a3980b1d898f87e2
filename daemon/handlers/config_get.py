"""`config.get`: one key's effective value, or every key (what `config show` prints)."""

from __future__ import annotations

from typing import Any

import msgspec

from branchpy_telemetry.client.config import flatten, get_value

from ..context import RequestContext
from .args import parse_args


class Args(msgspec.Struct, forbid_unknown_fields=True):
    key: str | None = None
    reveal_secrets: bool = False


def handle(ctx: RequestContext, args: dict[str, Any]) -> dict[str, Any]:
    spec = parse_args(args, Args)
    config = ctx.daemon.reload_config()
    values = flatten(config, reveal_secrets=spec.reveal_secrets)
    if spec.key is None:
        return {"values": values, "config_file": str(ctx.paths.config_file)}
    get_value(config, spec.key)  # unknown key -> config_invalid naming it
    return {"key": spec.key, "value": values[spec.key], "config_file": str(ctx.paths.config_file)}
