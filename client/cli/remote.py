"""One CLI request to the daemon: start it if allowed, send, translate failures.

Every failure to reach the daemon becomes a DaemonUnavailableError (exit 3)
whose hint names the socket tried and the daemon's log file.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..errors import DaemonUnavailableError, InsecureSocketDirError
from ..paths import resolve_paths

QUICK_TIMEOUT = 5.0  # seconds per try for ordinary commands
LONG_TIMEOUT = 600.0  # export/preview: the daemon answers when done


def call_daemon(options: argparse.Namespace, cmd: str, args: dict[str, Any] | None = None, *,
                long: bool = False, on_progress: Callable | None = None) -> Any:
    from ..consent import CONSENT_COMMANDS, caller_consent_args
    from ..daemon_launcher import require_daemon, unavailable_hint
    from ..transport import open_control_client

    if cmd in CONSENT_COMMANDS:
        args = {**(args or {}), **caller_consent_args()}
    paths = resolve_paths()
    require_daemon(paths, start=not options.no_start)
    timeout = options.timeout or (LONG_TIMEOUT if long else QUICK_TIMEOUT)
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
    """A long command: wait as long as it takes, with progress on a TTY (not with --json)."""
    from .progress import TerminalProgress

    display = TerminalProgress.maybe(label, not options.json)
    try:
        return call_daemon(options, cmd, args, long=True, on_progress=display)
    finally:
        if display is not None:
            display.finish()
