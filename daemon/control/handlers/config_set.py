"""`config.set`: validate one key, persist it to the config file, reload (and reschedule); all or nothing."""

from __future__ import annotations

from typing import Any

import msgspec

from branchpy_telemetry.client.contracts.config import flatten
from branchpy_telemetry.daemon.control.config_change import apply_config_change
from branchpy_telemetry.daemon.control.context import RequestContext
from branchpy_telemetry.daemon.control.handlers.args import parse_args

Scalar = str | int | float | bool | None


class ConfigSetArgs(msgspec.Struct, forbid_unknown_fields=True):
    """Set one key (dotted, e.g. `telemetry.auto.interval`); `null` or "" restores a path key's default."""

    key: str
    value: Scalar


class ConfigSetResult(msgspec.Struct, kw_only=True):
    """The key and its effective value once written."""

    key: str
    value: Scalar
    config_file: str


def handle(ctx: RequestContext, args: dict[str, Any]) -> ConfigSetResult:
    spec = parse_args(args, ConfigSetArgs)
    config = apply_config_change(ctx.daemon, {spec.key: spec.value})
    return ConfigSetResult(key=spec.key, value=flatten(config)[spec.key],
                           config_file=str(ctx.paths.config_file))
