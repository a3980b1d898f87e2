"""`branchpy-telemetryd`: the per-user daemon (foreground; systemd or the CLI starts it).

Exit codes: 0 clean stop (signal, `shutdown`, idle) · 1 could not start
(folders, sockets, config) · 2 usage · 3 another daemon already runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from pathlib import Path

import structlog

from branchpy_telemetry.client.contracts.config import load_config
from branchpy_telemetry.client.contracts.errors import TelemetryError
from branchpy_telemetry.client.contracts.paths import TelemetryPaths, ensure_private_dir, resolve_paths
from branchpy_telemetry.client.contracts.socket_dir import claim_run_dir
from branchpy_telemetry.client.contracts.transport import describe
from branchpy_telemetry.client.contracts.version import package_version
from branchpy_telemetry.client.infra.logging_setup import (
    LOG_FORMATS,
    LOG_LEVELS,
    default_level,
    setup_logging,
)
from branchpy_telemetry.daemon.control.context import DaemonContext
from branchpy_telemetry.daemon.control.lock import AlreadyRunningError, InstanceLock
from branchpy_telemetry.daemon.scheduling.housekeeping import DEFAULT_INTERVAL_S as DEFAULT_HOUSEKEEPING_S

EXIT_OK, EXIT_START_FAILED, EXIT_USAGE, EXIT_ALREADY_RUNNING = 0, 1, 2, 3
DEFAULT_IDLE_TIMEOUT = 600.0
ABANDONED_RUN = threading.Event()  # set when shutdown left an auto run behind

log = structlog.get_logger("branchpy_telemetry.daemon")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="branchpy-telemetryd",
                                     description="BranchPy telemetry daemon (runs in the foreground).")
    parser.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT, metavar="SECONDS",
                        help="in manual mode, exit after this long without requests (0: never; "
                             "default %(default)g). Auto mode never idles out.")
    parser.add_argument("--housekeeping-interval", type=float, default=DEFAULT_HOUSEKEEPING_S,
                        metavar="SECONDS",
                        help="rotate and apply retention this often, in every mode (default %(default)g)")
    parser.add_argument("--log-level", choices=LOG_LEVELS,
                        help="default: info, or warning when stderr is a terminal")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="auto",
                        help="text for people, json for services (default auto: text on a terminal, json "
                             "otherwise; under systemd each line carries its journal priority)")
    parser.add_argument("--log-file", type=Path, metavar="PATH",
                        help="log to this file instead of stderr, rotated at 5 MiB, 3 old generations "
                             "kept (what the CLI passes when it starts the daemon)")
    return parser


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    level = options.log_level or ("info" if options.log_file else default_level(service=True))
    setup_logging(level, log_format=options.log_format, log_file=options.log_file)
    paths = resolve_paths()
    try:
        config = load_config(paths.config_file)
        prepare_folders(paths)
    except (TelemetryError, OSError) as exc:
        return fail_to_start(paths, exc)
    lock = InstanceLock(paths.daemon_lock)
    try:
        lock.acquire()
    except AlreadyRunningError as exc:
        log.error("daemon.already_running", pid=exc.pid, lock=str(exc.lock_file))
        print(f"branchpy-telemetryd: already running (pid {exc.pid or 'unknown'}); "
              f"socket {describe(paths)}", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    except OSError as exc:
        return fail_to_start(paths, exc)
    try:
        code = serve(paths, config, options.idle_timeout, options.housekeeping_interval)
    finally:
        lock.release()
    if ABANDONED_RUN.is_set():  # a delivery thread would keep the interpreter alive: leave now
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def serve(paths: TelemetryPaths, config, idle_timeout: float,
          housekeeping_interval: float = DEFAULT_HOUSEKEEPING_S) -> int:
    import zmq

    from branchpy_telemetry.client.contracts.commands import BACKGROUND_COMMANDS
    from branchpy_telemetry.daemon.control.handlers import REGISTRY
    from branchpy_telemetry.daemon.control.server import ControlServer

    daemon = DaemonContext(paths=paths, config=config, version=package_version(), idle_timeout=idle_timeout,
                           housekeeping_interval_s=housekeeping_interval)
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)

    def on_signal(signum, _frame):
        daemon.request_shutdown()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    server = ControlServer(daemon, REGISTRY, BACKGROUND_COMMANDS, wakeup_fd=wake_r.fileno())
    try:
        try:
            server.bind()
        except (zmq.ZMQError, OSError, TelemetryError) as exc:
            return fail_to_start(paths, exc)
        log.info("daemon.started", pid=daemon.pid, mode=daemon.mode, version=daemon.version,
                 idle_timeout_s=idle_timeout)
        start_delivery(daemon, server)
        reason = server.serve()
        log.info("daemon.stopping", reason=reason)
        return EXIT_OK
    finally:
        stop_delivery(daemon)
        server.close()
        signal.set_wakeup_fd(-1)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        wake_r.close()
        wake_w.close()
        log.info("daemon.stopped", pid=daemon.pid)


def start_delivery(daemon: DaemonContext, server) -> None:
    """Crash leftovers swept from the outbox, the schedule (housekeeping; auto mode if configured),
    READY=1 for systemd, WATCHDOG=1 from the loop."""
    from branchpy_telemetry.daemon.control.schedule import apply_schedule
    from branchpy_telemetry.daemon.control.sd_notify import WatchdogPinger, notify_ready
    from branchpy_telemetry.daemon.counters import CounterStore
    from branchpy_telemetry.daemon.scheduling.auto_job import open_outbox

    paths = daemon.paths
    try:
        open_outbox(paths, daemon.config, CounterStore(paths.counters_file)).sweep_stale_temp_files()
    except OSError as exc:  # the next delivery or housekeeping turn sweeps again
        log.warning("outbox.sweep_failed", error=str(exc))
    try:
        apply_schedule(daemon)
    except TelemetryError as exc:  # a bad interval must not stop the control plane
        log.error("auto.cannot_start", code=exc.code, error=exc.message)
    pinger = WatchdogPinger()
    if pinger.active:
        server.on_tick = pinger.ping_if_due
        server.tick_s = pinger.period
    notify_ready(f"serving on {daemon.paths.control_endpoint} (mode {daemon.mode})")


def stop_delivery(daemon: DaemonContext) -> None:
    """STOPPING=1, then stop the scheduler; a run still going after a few seconds is abandoned
    (exactly-once survives that: the ledger is written before a package leaves the outbox)."""
    from branchpy_telemetry.daemon.control.schedule import stop_schedule
    from branchpy_telemetry.daemon.control.sd_notify import notify_stopping

    notify_stopping()
    if not stop_schedule(daemon):
        ABANDONED_RUN.set()


def prepare_folders(paths: TelemetryPaths) -> None:
    """Create what the daemon needs; fail now (exit 1) rather than on the first request.

    The run folder must be this user's own (created 0700, never a symlink or
    another user's folder, never chmod'ed through a link): client/contracts/socket_dir.py.
    """
    claim_run_dir(paths)
    for folder in (paths.data_dir, paths.spool_dir, paths.outbox_dir):
        ensure_private_dir(folder)
    if not os.access(paths.data_dir, os.W_OK):
        raise PermissionError(f"{paths.data_dir} is not writable")


def fail_to_start(paths: TelemetryPaths, exc: BaseException) -> int:
    message = getattr(exc, "message", None) or str(exc)
    code = getattr(exc, "code", None) if isinstance(exc, TelemetryError) else None
    log.error("daemon.start_failed", error=message, error_type=type(exc).__name__, code=code)
    print(f"branchpy-telemetryd: cannot start: {message}" + (f" [{code}]" if code else ""), file=sys.stderr)
    hint = getattr(exc, "hint", None)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
    return EXIT_START_FAILED


if __name__ == "__main__":
    sys.exit(main())
