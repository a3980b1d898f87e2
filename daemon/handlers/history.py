"""`history`: upload receipts from the ledger, newest first."""

from __future__ import annotations

from typing import Any

import msgspec

from ..context import RequestContext
from ..ledger import read_history
from .args import parse_args


class Args(msgspec.Struct, forbid_unknown_fields=True):
    limit: int | None = None


def handle(ctx: RequestContext, args: dict[str, Any]) -> dict[str, Any]:
    spec = parse_args(args, Args)
    limit = spec.limit if spec.limit is None or spec.limit > 0 else None
    records = read_history(ctx.paths.ledger_file, limit)
    return {"ledger_file": str(ctx.paths.ledger_file), "records": msgspec.to_builtins(records)}
