"""`status`: who and where the daemon is, and how much is waiting in the spool."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..consent_gate import ConsentArgs, delivery_blocker
from ..context import RequestContext
from .args import parse_args


def handle(ctx: RequestContext, args: dict[str, Any]) -> dict[str, Any]:
    caller = parse_args(args, ConsentArgs)
    daemon, paths = ctx.daemon, ctx.paths
    spool_files, spool_bytes = measure_spool(paths.spool_dir)
    return {
        "pid": daemon.pid,
        "version": daemon.version,
        "uptime_s": round(daemon.uptime_s, 3),
        "mode": daemon.mode,
        "endpoint": daemon.config.telemetry.endpoint,
        "socket": daemon.endpoint or paths.control_endpoint,
        "progress_socket": daemon.progress_endpoint or paths.progress_endpoint,
        # manual mode exits after this many idle seconds; None: never (auto mode, or 0)
        "idle_timeout_s": daemon.idle_timeout if daemon.mode == "manual" and daemon.idle_timeout else None,
        "spool_dir": str(paths.spool_dir),
        "spool_files": spool_files,
        "spool_bytes": spool_bytes,
        "config_file": str(paths.config_file),
        "log_file": str(paths.daemon_log),
        **delivery_status(ctx),
        "consent": consent_status(ctx, caller),
    }


def consent_status(ctx: RequestContext, caller: ConsentArgs) -> dict[str, Any]:
    """Whether a delivery asked for now would go out, and if not, which source blocks it."""
    blocker = delivery_blocker(ctx.config, caller)
    return {"deliveries": "blocked" if blocker else "allowed", "blocked_by": blocker,
            "config": ctx.config.telemetry.consent}


def delivery_status(ctx: RequestContext) -> dict[str, Any]:
    """Auto mode (next run, last run), outbox size, and the counters since install."""
    from ..auto_mode import auto_status
    from ..counters import CounterStore
    from ..outbox import Outbox

    outbox = Outbox(ctx.paths, 1, counters=CounterStore(ctx.paths.counters_file))
    pending = outbox.pending()
    quarantined = outbox.quarantined()
    counters = CounterStore(ctx.paths.counters_file).snapshot()
    dropped: dict[str, int] = {}
    for name, value in counters.items():
        if name.startswith("dropped.") and name.count(".") >= 2:
            reason, unit = name[len("dropped."):].rsplit(".", 1)
            dropped[f"{reason}.{unit}"] = value
    return {
        "auto": auto_status(ctx.daemon),
        "outbox": {"packages": len(pending), "bytes": sum(e.size for e in pending),
                   "quarantined": len(quarantined), "quarantined_events": outbox.quarantined_events(),
                   "dir": str(ctx.paths.outbox_dir)},
        "counters": {
            "emitted": counters.get("emitted.events", 0),
            "exported": counters.get("exported.events", 0),
            "exported_packages": counters.get("exported.packages", 0),
            "uploaded": counters.get("uploaded.events", 0),
            "uploaded_packages": counters.get("uploaded.packages", 0),
            "duplicates": counters.get("duplicates.packages", 0),
            "quarantined": counters.get("quarantined.packages", 0),
            "quarantined_events": counters.get("quarantined.events", 0),
            "dropped": dropped,
        },
    }


def measure_spool(spool_dir: Path) -> tuple[int, int]:
    """(file count, total bytes) of the regular files in the spool folder."""
    files = size = 0
    try:
        entries = list(os.scandir(spool_dir))
    except FileNotFoundError:
        return 0, 0
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False):
                files += 1
                size += entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:  # rotated or removed meanwhile
            continue
    return files, size
