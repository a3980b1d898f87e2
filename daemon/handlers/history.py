"""`history`: upload receipts from the ledger, newest first."""

from __future__ import annotations

from typing import Any

import msgspec

from branchpy_telemetry.client.errors import UsageError

from ..context import RequestContext
from ..ledger import read_history
from .args import parse_args


class Args(msgspec.Struct, forbid_unknown_fields=True):
    limit: int | None = None


def handle(ctx: RequestContext, args: dict[str, Any]) -> dict[str, Any]:
    spec = parse_args(args, Args)
    if spec.limit is not None and spec.limit <= 0:
        raise UsageError(f"limit must be greater than 0, got {spec.limit}")
    records = read_history(ctx.paths.ledger_file, spec.limit)
    return {"ledger_file": str(ctx.paths.ledger_file), "records": msgspec.to_builtins(records)}
