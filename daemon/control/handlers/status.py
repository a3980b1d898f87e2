"""`status`: who and where the daemon is, and how much is waiting in the spool."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import msgspec

from branchpy_telemetry.daemon.control.context import RequestContext
from branchpy_telemetry.daemon.control.handlers.args import parse_args
from branchpy_telemetry.daemon.delivery.consent_gate import ConsentArgs, delivery_blocker


class AutoStatus(msgspec.Struct, kw_only=True):
    """Auto mode: its settings, whether a run is scheduled (and if auto mode is on but nothing is,
    why), the next and the last run. Times are RFC 3339 UTC (`2026-11-28T01:02:03.456Z`)."""

    interval: str
    dry_run: bool
    scheduled: bool
    next_run: str | None  # RFC 3339 UTC
    last_run: dict[str, Any] | None  # ok, trigger, started_at, duration_s, error, error_code, report
    runs: dict[str, int]  # run counts by outcome
    not_scheduled_because: str | None = None  # mode is auto but no run is scheduled: why


class OutboxStatus(msgspec.Struct, kw_only=True):
    """Built packages waiting to be sent, and those the server rejected."""

    packages: int
    bytes: int
    quarantined: int
    quarantined_events: int  # events in the quarantined packages (read from the files)
    dir: str


class CounterStatus(msgspec.Struct, kw_only=True):
    """Counters since install. Each says what it counts:

    `read_by_sync`: events sync/auto mode read from the sources (each line once);
    `exported`/`exported_packages`: events and packages written at every real export
    (`export`, `upload --auto`, sync/auto mode; a window exported twice counts twice);
    `dry_run_exported`/`dry_run_packages`: the same for `upload --auto --dry-run` (nothing sent);
    `uploaded`/`uploaded_packages`: events the server stored as new, and the packages that carried them;
    `duplicate_events`: events the server already had (sent again in a new package, or a package
    sent again); `duplicates`: packages the server had already stored whole;
    `emitted`: the old name of `read_by_sync`, kept for one release."""

    read_by_sync: int
    emitted: int  # deprecated: same value as read_by_sync
    exported: int
    exported_packages: int
    dry_run_exported: int
    dry_run_packages: int
    uploaded: int
    uploaded_packages: int
    duplicate_events: int
    duplicates: int
    quarantined: int
    quarantined_events: int
    dropped: dict[str, int]  # "<reason>.<unit>" -> count


class ConsentStatus(msgspec.Struct, kw_only=True):
    """Whether a delivery asked for now would go out, and if not, which source blocks it."""

    deliveries: Literal["allowed", "blocked"]
    blocked_by: str | None
    config: str  # telemetry.consent


class StatusResult(msgspec.Struct, kw_only=True):
    """Who and where the daemon is, how much waits in the spool and the outbox, and consent."""

    pid: int
    version: str
    uptime_s: float
    mode: Literal["manual", "auto"]
    endpoint: str
    socket: str
    progress_socket: str
    idle_timeout_s: float | None  # manual mode exits after this many idle seconds; None: never
    spool_dir: str
    spool_files: int
    spool_bytes: int
    config_file: str
    log_file: str
    auto: AutoStatus
    outbox: OutboxStatus
    counters: CounterStatus
    consent: ConsentStatus


def handle(ctx: RequestContext, args: dict[str, Any]) -> StatusResult:
    caller = parse_args(args, ConsentArgs)
    daemon, paths = ctx.daemon, ctx.paths
    spool_files, spool_bytes = measure_spool(paths.spool_dir)
    from branchpy_telemetry.daemon.control.auto_mode import auto_status

    return StatusResult(
        pid=daemon.pid,
        version=daemon.version,
        uptime_s=round(daemon.uptime_s, 3),
        mode=daemon.mode,
        endpoint=daemon.config.telemetry.endpoint,
        socket=daemon.endpoint or paths.control_endpoint,
        progress_socket=daemon.progress_endpoint or paths.progress_endpoint,
        idle_timeout_s=daemon.idle_timeout if daemon.mode == "manual" and daemon.idle_timeout else None,
        spool_dir=str(paths.spool_dir),
        spool_files=spool_files,
        spool_bytes=spool_bytes,
        config_file=str(paths.config_file),
        log_file=str(paths.daemon_log),
        auto=AutoStatus(**auto_status(ctx.daemon)),
        outbox=outbox_status(ctx),
        counters=counter_status(ctx),
        consent=consent_status(ctx, caller),
    )


def consent_status(ctx: RequestContext, caller: ConsentArgs) -> ConsentStatus:
    blocker = delivery_blocker(ctx.config, caller)
    return ConsentStatus(deliveries="blocked" if blocker else "allowed", blocked_by=blocker,
                         config=ctx.config.telemetry.consent)


def outbox_status(ctx: RequestContext) -> OutboxStatus:
    from branchpy_telemetry.daemon.counters import CounterStore
    from branchpy_telemetry.daemon.delivery.outbox import Outbox

    outbox = Outbox(ctx.paths, 1, counters=CounterStore(ctx.paths.counters_file))
    pending = outbox.pending()
    quarantined = outbox.quarantined()
    return OutboxStatus(packages=len(pending), bytes=sum(e.size for e in pending),
                        quarantined=len(quarantined), quarantined_events=outbox.quarantined_events(),
                        dir=str(ctx.paths.outbox_dir))


def counter_status(ctx: RequestContext) -> CounterStatus:
    from branchpy_telemetry.daemon.counters import CounterStore

    counters = CounterStore(ctx.paths.counters_file).snapshot()
    dropped: dict[str, int] = {}
    for name, value in counters.items():
        if name.startswith("dropped.") and name.count(".") >= 2:
            reason, unit = name[len("dropped."):].rsplit(".", 1)
            dropped[f"{reason}.{unit}"] = value
    read = counters.get("emitted.events", 0)
    return CounterStatus(
        read_by_sync=read,
        emitted=read,
        exported=counters.get("exported.events", 0),
        exported_packages=counters.get("exported.packages", 0),
        dry_run_exported=counters.get("dry_run.events", 0),
        dry_run_packages=counters.get("dry_run.packages", 0),
        uploaded=counters.get("uploaded.events", 0),
        uploaded_packages=counters.get("uploaded.packages", 0),
        duplicate_events=counters.get("duplicates.events", 0),
        duplicates=counters.get("duplicates.packages", 0),
        quarantined=counters.get("quarantined.packages", 0),
        quarantined_events=counters.get("quarantined.events", 0),
        dropped=dropped,
    )


def measure_spool(spool_dir: Path) -> tuple[int, int]:
    """(file count, total bytes) of the spool's event files: the active file and the rotated
    ones (never `rotation.gen`, lock files or anything else that lives there)."""
    from branchpy_telemetry.client.emitter.spool import list_spool_files

    files = size = 0
    for path in list_spool_files(spool_dir):
        try:
            size += path.stat().st_size
        except FileNotFoundError:  # rotated or removed meanwhile
            continue
        files += 1
    return files, size
