"""sd_notify without a dependency: one datagram to `$NOTIFY_SOCKET`.

The daemon calls `notify_ready()` once it serves requests and
`notify_watchdog()` at least every `watchdog_interval()/2` seconds when
systemd asks for it (`WatchdogSec=`). Outside systemd every call is a
no-op returning False; a send failure is logged, never raised.
"""

from __future__ import annotations

import os
import socket

import structlog

log = structlog.get_logger("branchpy.sd_notify")


def sd_notify(state: str, env: dict[str, str] | os._Environ[str] | None = None) -> bool:
    """Send `state` (e.g. "READY=1\\nSTATUS=…") to systemd; True if sent."""
    env = os.environ if env is None else env
    address = env.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address[0] == "@":  # abstract namespace socket
        address = "\0" + address[1:]
    elif address[0] != "/":
        log.warning("sd_notify.unsupported_address", address=address)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("sd_notify.failed", error=str(exc))
        return False
    return True


def notify_ready(status: str | None = None, env=None) -> bool:
    return sd_notify("READY=1" + (f"\nSTATUS={status}" if status else ""), env)


def notify_watchdog(env=None) -> bool:
    return sd_notify("WATCHDOG=1", env)


def notify_stopping(env=None) -> bool:
    return sd_notify("STOPPING=1", env)


def notify_status(status: str, env=None) -> bool:
    return sd_notify(f"STATUS={status}", env)


def watchdog_interval(env: dict[str, str] | os._Environ[str] | None = None) -> float | None:
    """Seconds systemd allows between WATCHDOG=1 pings, or None when no watchdog is asked for."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1_000_000 if value > 0 else None
