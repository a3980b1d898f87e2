"""One CLI request to the daemon: start it if allowed, send, translate failures.

Every failure to reach the daemon becomes a DaemonUnavailableError (exit 3)
whose hint names the socket tried and the daemon's log file. How long each
try waits is the command's timeout class in client/contracts/commands.py (`--timeout`
replaces it).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from branchpy_telemetry.client.contracts.errors import DaemonUnavailableError, InsecureSocketDirError
from branchpy_telemetry.client.contracts.paths import resolve_paths


def call_daemon(options: argparse.Namespace, cmd: str, args: dict[str, Any] | None = None, *,
                on_progress: Callable | None = None) -> Any:
    from branchpy_telemetry.client.contracts.commands import CONSENT_COMMANDS, timeout_for
    from branchpy_telemetry.client.contracts.consent import caller_consent_args
    from branchpy_telemetry.client.thin.daemon_launcher import require_daemon, unavailable_hint
    from branchpy_telemetry.client.thin.ipc import open_control_client

    if cmd in CONSENT_COMMANDS:
        args = {**(args or {}), **caller_consent_args()}
    paths = resolve_paths()
    require_daemon(paths, start=not options.no_start)
    timeout = options.timeout or timeout_for(cmd)
    try:
        client = open_control_client(paths, timeout=timeout)
    except InsecureSocketDirError:
        raise
    except DaemonUnavailableError as exc:
        raise DaemonUnavailableError(exc.message, hint=unavailable_hint(paths)) from None
    try:
        return client.call(cmd, args, on_progress=on_progress)
    except DaemonUnavailableError as exc:
        raise DaemonUnavailableError(exc.message, hint=unavailable_hint(paths)) from None
    finally:
        client.close()


def call_daemon_long(options: argparse.Namespace, cmd: str, args: dict[str, Any], label: str) -> Any:
    """A command with progress: shown on a TTY while it runs (not with --json)."""
    from branchpy_telemetry.client.thin.cli.progress import TerminalProgress

    display = TerminalProgress.maybe(label, not options.json)
    try:
        return call_daemon(options, cmd, args, on_progress=display)
    finally:
        if display is not None:
            display.finish()
