"""What handlers see: the daemon's shared state and one request's view of it.

Handlers are plain functions `(ctx, args) -> dict`; `ctx` is a
`RequestContext`. They never touch sockets: progress goes through
`ctx.progress(...)`, a shutdown through `ctx.daemon.request_shutdown()`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from branchpy_telemetry.client.contracts.config import Config, load_config
from branchpy_telemetry.client.contracts.paths import TelemetryPaths
from branchpy_telemetry.daemon.delivery.delivery_lock import DeliveryLock
from branchpy_telemetry.daemon.scheduling.job_scheduler import JobScheduler

ProgressSink = Callable[[str, str, str, int, "int | None"], None]  # (request id, cmd, stage, done, total)


@dataclass
class DaemonContext:
    """One per daemon process; shared by every request (and worker thread)."""

    paths: TelemetryPaths
    config: Config
    version: str
    idle_timeout: float
    started_at: float = field(default_factory=time.time)
    started_monotonic: float = field(default_factory=time.monotonic)
    pid: int = field(default_factory=os.getpid)
    publish_progress: ProgressSink | None = None
    endpoint: str = ""  # where the control socket is bound (set by the server; ipc or tcp)
    progress_endpoint: str = ""
    shutdown_event: threading.Event = field(default_factory=threading.Event)
    config_lock: threading.Lock = field(default_factory=threading.Lock)
    # Delivery: the daemon's one scheduler (auto-mode runs and housekeeping), the auto-mode
    # job in it (daemon/control/auto_mode.py), and the one lock around a delivery run
    # (daemon/delivery/delivery_lock.py).
    jobs: JobScheduler = field(default_factory=JobScheduler)
    scheduler: Any = None
    auto_problem: str | None = None  # why auto mode is configured but not scheduled (status shows it)
    housekeeping_interval_s: float = 0.0  # daemon/scheduling/housekeeping.py; 0: no housekeeping job
    delivery_lock: DeliveryLock = field(default_factory=DeliveryLock)

    @property
    def mode(self) -> str:
        return self.config.telemetry.mode

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self.started_monotonic

    def request_shutdown(self) -> None:
        self.shutdown_event.set()

    def reload_config(self) -> Config:
        """Re-read the config file (the file is the source of truth) and keep it."""
        with self.config_lock:
            self.config = load_config(self.paths.config_file)
            return self.config


@dataclass(frozen=True)
class RequestContext:
    """One request's view: the shared daemon state plus this request's id."""

    daemon: DaemonContext
    request_id: str
    cmd: str

    @property
    def paths(self) -> TelemetryPaths:
        return self.daemon.paths

    @property
    def config(self) -> Config:
        return self.daemon.config

    def progress(self, done: int, total: int | None = None, stage: str = "running") -> None:
        """Publish progress for this request (no-op when nobody wired a publisher)."""
        if self.daemon.publish_progress is not None:
            self.daemon.publish_progress(self.request_id, self.cmd, stage, done, total)
