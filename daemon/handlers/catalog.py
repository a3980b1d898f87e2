"""`catalog`: what may be collected (the configured catalog, described); with `check`, is a file valid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from branchpy_telemetry.client.catalog import (
    CatalogInvalidError,
    cached_catalog,
    describe_catalog,
    load_catalog,
)
from branchpy_telemetry.client.errors import UsageError
from branchpy_telemetry.client.timewindow import utcnow

from ..context import RequestContext
from .args import parse_args


class Args(msgspec.Struct, forbid_unknown_fields=True):
    check: str | None = None  # an absolute path: validate this file instead of describing the configured one


def handle(ctx: RequestContext, args: dict[str, Any]) -> dict[str, Any]:
    spec = parse_args(args, Args)
    today = utcnow().date()
    if spec.check is None:
        return msgspec.to_builtins(describe_catalog(cached_catalog(ctx.config.telemetry.catalog), today))
    path = Path(spec.check)
    if not path.is_absolute():
        raise UsageError(f"check must be an absolute path, got {spec.check!r}",
                         hint="the CLI and the bridge resolve it against the caller's folder")
    try:
        catalog = load_catalog(path)
    except CatalogInvalidError as exc:
        problems = exc.details if isinstance(exc.details, list) else \
            [{"entry": "catalog", "problem": exc.message}]
        return {"file": str(path), "valid": False, "problems": problems}
    expired = [f"{e.category}/{e.name}" for e in describe_catalog(catalog, today).events if e.expired]
    return {"file": str(path), "valid": True, "problems": [], "id": catalog.id, "revision": catalog.revision,
            "sha256": catalog.sha256, "events": len(catalog.events), "expired": expired}
