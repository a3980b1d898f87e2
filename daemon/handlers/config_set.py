"""`config.set`: validate one key, persist it to the config file, reload (and reschedule)."""

from __future__ import annotations

from typing import Any

import msgspec

from branchpy_telemetry.client.config import flatten, set_value_in_file

from ..context import RequestContext
from .args import parse_args

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
    with ctx.daemon.config_lock:
        set_value_in_file(ctx.paths.config_file, spec.key, spec.value)
    config = ctx.daemon.reload_config()
    if spec.key.startswith(("telemetry.mode", "telemetry.auto.")):
        from ..auto_mode import apply_mode

        apply_mode(ctx.daemon)  # `config set telemetry.mode auto` starts the schedule live, like `mode`
    return ConfigSetResult(key=spec.key, value=flatten(config)[spec.key],
                           config_file=str(ctx.paths.config_file))
