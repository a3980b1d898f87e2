"""`status`: who and where the daemon is, and how much is waiting in the spool."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..context import RequestContext
from .args import NoArgs, parse_args


def handle(ctx: RequestContext, args: dict[str, Any]) -> dict[str, Any]:
    parse_args(args, NoArgs)
    daemon, paths = ctx.daemon, ctx.paths
    spool_files, spool_bytes = measure_spool(paths.spool_dir)
    return {
        "pid": daemon.pid,
        "version": daemon.version,
        "uptime_s": round(daemon.uptime_s, 3),
        "mode": daemon.mode,
        "endpoint": daemon.config.telemetry.endpoint,
        "socket": paths.control_endpoint,
        "progress_socket": paths.progress_endpoint,
        # manual mode exits after this many idle seconds; None: never (auto mode, or 0)
        "idle_timeout_s": daemon.idle_timeout if daemon.mode == "manual" and daemon.idle_timeout else None,
        "spool_dir": str(paths.spool_dir),
        "spool_files": spool_files,
        "spool_bytes": spool_bytes,
        "config_file": str(paths.config_file),
        "log_file": str(paths.daemon_log),
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
