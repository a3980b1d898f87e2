"""sd_notify without a dependency: one datagram to `$NOTIFY_SOCKET`.

The daemon calls `notify_ready()` once it serves requests and
`notify_watchdog()` at least every `watchdog_interval()/2` seconds when
systemd asks for it (`WatchdogSec=`). Outside systemd every call is a
no-op returning False; a send failure is logged, never raised.
"""

from __future__ import annotations

import os
import socket
import time

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


class WatchdogPinger:
    """Rate-limited WATCHDOG=1 for the daemon's main loop: call `ping_if_due()` on
    every loop turn (ping from the loop, not a side thread, so a hung loop is noticed).
    Pings every half watchdog interval; inactive outside systemd."""

    def __init__(self, env: dict[str, str] | os._Environ[str] | None = None, clock=None):
        self._env = os.environ if env is None else env
        self._clock = clock or time.monotonic
        interval = watchdog_interval(self._env)
        self.period = interval / 2 if interval else None
        self._last: float | None = None

    @property
    def active(self) -> bool:
        return self.period is not None

    def ping_if_due(self) -> bool:
        if self.period is None:
            return False
        now = self._clock()
        if self._last is not None and now - self._last < self.period:
            return False
        self._last = now
        return notify_watchdog(self._env)
