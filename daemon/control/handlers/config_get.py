"""`config.get`: one key's effective value, or every key (what `config show` prints)."""

from __future__ import annotations

from typing import Any

import msgspec

from branchpy_telemetry.client.contracts.config import flatten, get_value
from branchpy_telemetry.daemon.control.context import RequestContext
from branchpy_telemetry.daemon.control.handlers.args import parse_args

Scalar = str | int | float | bool | None


class ConfigGetArgs(msgspec.Struct, forbid_unknown_fields=True):
    """One key (dotted, e.g. `telemetry.mode`), or every key when `key` is absent."""

    key: str | None = None
    reveal_secrets: bool = False


class ConfigGetResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """With `key`: that key and its effective `value`; without: every key in `values`."""

    key: str | msgspec.UnsetType = msgspec.UNSET
    value: Scalar | msgspec.UnsetType = msgspec.UNSET
    values: dict[str, Scalar] | msgspec.UnsetType = msgspec.UNSET
    config_file: str


def handle(ctx: RequestContext, args: dict[str, Any]) -> ConfigGetResult:
    spec = parse_args(args, ConfigGetArgs)
    config = ctx.daemon.reload_config()
    values = flatten(config, reveal_secrets=spec.reveal_secrets)
    if spec.key is None:
        return ConfigGetResult(values=values, config_file=str(ctx.paths.config_file))
    get_value(config, spec.key)  # unknown key -> config_invalid naming it
    return ConfigGetResult(key=spec.key, value=values[spec.key], config_file=str(ctx.paths.config_file))
