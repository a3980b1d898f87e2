"""`history`: upload receipts from the ledger, newest first."""

from __future__ import annotations

from typing import Any

import msgspec

from branchpy_telemetry.client.contracts.errors import UsageError
from branchpy_telemetry.daemon.control.context import RequestContext
from branchpy_telemetry.daemon.control.handlers.args import parse_args
from branchpy_telemetry.daemon.delivery.ledger import LedgerRecord, read_history


class HistoryArgs(msgspec.Struct, forbid_unknown_fields=True):
    """The newest `limit` receipts (all when absent)."""

    limit: int | None = None


class HistoryResult(msgspec.Struct, kw_only=True):
    """Upload receipts from the ledger, newest first."""

    ledger_file: str
    records: list[LedgerRecord]


def handle(ctx: RequestContext, args: dict[str, Any]) -> HistoryResult:
    spec = parse_args(args, HistoryArgs)
    if spec.limit is not None and spec.limit <= 0:
        raise UsageError(f"limit must be greater than 0, got {spec.limit}")
    return HistoryResult(ledger_file=str(ctx.paths.ledger_file),
                         records=read_history(ctx.paths.ledger_file, spec.limit))
