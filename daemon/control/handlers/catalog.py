"""`catalog`: what may be collected (the configured catalog, described); with `check`, is a file valid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from branchpy_telemetry.client.contracts.catalog import (
    CatalogDescription,
    cached_catalog,
    describe_catalog,
    load_catalog,
)
from branchpy_telemetry.client.contracts.errors import CatalogInvalidError, UsageError
from branchpy_telemetry.client.contracts.timewindow import utcnow
from branchpy_telemetry.daemon.control.context import RequestContext
from branchpy_telemetry.daemon.control.handlers.args import parse_args


class CatalogArgs(msgspec.Struct, forbid_unknown_fields=True):
    check: str | None = None  # an absolute path: validate this file instead of describing the configured one


class CatalogListing(CatalogDescription, tag="catalog", tag_field="kind"):
    """The configured catalog: every event and attribute that may leave, with descriptions."""


class CatalogProblem(msgspec.Struct):
    entry: str  # where: `event[3] command/analyze attr files`, `id`, `errors.code_pattern`
    problem: str


class CatalogCheckResult(msgspec.Struct, kw_only=True, tag="check", tag_field="kind"):
    """Whether `file` is a valid catalog: every problem by entry, or what it declares."""

    file: str
    valid: bool
    problems: list[CatalogProblem]
    id: str | None = None
    revision: str | None = None
    sha256: str | None = None
    events: int | None = None
    expired: list[str] = []  # category/name of the events past their date


CatalogResult = CatalogListing | CatalogCheckResult


def handle(ctx: RequestContext, args: dict[str, Any]) -> CatalogResult:
    spec = parse_args(args, CatalogArgs)
    today = utcnow().date()
    if spec.check is None:
        described = describe_catalog(cached_catalog(ctx.config.telemetry.catalog), today)
        return CatalogListing(**msgspec.structs.asdict(described))
    path = Path(spec.check)
    if not path.is_absolute():
        raise UsageError(f"check must be an absolute path, got {spec.check!r}",
                         hint="send an absolute path (the CLI resolves it against its working folder)")
    try:
        catalog = load_catalog(path)
    except CatalogInvalidError as exc:
        problems = exc.details if isinstance(exc.details, list) else \
            [{"entry": "catalog", "problem": exc.message}]
        return CatalogCheckResult(file=str(path), valid=False,
                                  problems=msgspec.convert(problems, list[CatalogProblem]))
    expired = [f"{e.category}/{e.name}" for e in describe_catalog(catalog, today).events if e.expired]
    return CatalogCheckResult(file=str(path), valid=True, problems=[], id=catalog.id,
                              revision=catalog.revision, sha256=catalog.sha256, events=len(catalog.events),
                              expired=expired)
