"""Find, start and stop the daemon from a thin client (CLI, bridge).

Clients never import daemon code: they *spawn* `branchpy-telemetryd` as a
detached process (own session, output appended to `paths.daemon_log`, which
the daemon rotates by size: `--log-file`) and
talk to it over ZeroMQ. Every failure here is a `DaemonUnavailableError`
whose hint names the socket tried and the daemon's log.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

from branchpy_telemetry.client.contracts.errors import DaemonUnavailableError
from branchpy_telemetry.client.contracts.paths import TelemetryPaths, ensure_private_dir
from branchpy_telemetry.client.contracts.socket_dir import check_own_socket, check_run_dir
from branchpy_telemetry.client.contracts.transport import describe, find_address, wants_tcp

DAEMON_SCRIPT = "branchpy-telemetryd"
START_TIMEOUT = 10.0
_POLL_STEP = 0.01


def daemon_command() -> list[str]:
    """The daemon's console script next to this interpreter, else `python -m`."""
    script = Path(sys.executable).parent / DAEMON_SCRIPT
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "branchpy_telemetry.daemon.main"]


def is_listening(paths: TelemetryPaths) -> bool:
    """True when something accepts connections on the control socket (no zmq needed).

    A crashed daemon leaves a socket (or address) file nobody listens on: that
    is False, immediately, instead of a request that times out. A run folder
    or socket that is not this user's own raises InsecureSocketDirError
    before anything connects to it.
    """
    if wants_tcp():
        address = find_address(paths)
        if address is None:
            return False
        host, _, port = address.control.removeprefix("tcp://").rpartition(":")
        if not port.isdigit():
            return False
        family, target = socket.AF_INET, (host, int(port))
    else:
        if not check_run_dir(paths) or not check_own_socket(paths.control_socket):
            return False
        family, target = socket.AF_UNIX, str(paths.control_socket)
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(target)
        return True
    except (OSError, ValueError):
        return False
    finally:
        probe.close()


def unavailable_hint(paths: TelemetryPaths) -> str:
    return (f"tried {describe(paths)}; start it with `branchpy telemetry daemon start` "
            f"(or run without --no-start); daemon log: {paths.daemon_log}")


def require_daemon(paths: TelemetryPaths, *, start: bool, start_timeout: float = START_TIMEOUT) -> bool:
    """Make sure a daemon listens; start one when allowed. True if this call started it."""
    if is_listening(paths):
        return False
    if not start:
        raise DaemonUnavailableError(f"no daemon is running (socket {describe(paths)})",
                                     hint=unavailable_hint(paths))
    start_daemon(paths, timeout=start_timeout)
    return True


def start_daemon(paths: TelemetryPaths, *, timeout: float = START_TIMEOUT,
                 extra_args: list[str] | None = None) -> int:
    """Spawn a detached daemon and wait until it listens; returns its pid."""
    import subprocess

    from branchpy_telemetry.client.contracts.consent import without_consent_variables

    log_file = _open_log(paths)
    try:
        proc = subprocess.Popen(
            [*daemon_command(), "--log-file", str(paths.daemon_log), *(extra_args or [])],
            # the caller's DO_NOT_TRACK travels with its requests, not with the daemon it leaves behind
            env=without_consent_variables(os.environ),
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
            start_new_session=True, close_fds=True,
            # Windows: no console, own process group, so closing the terminal does not stop it
            creationflags=(getattr(subprocess, "DETACHED_PROCESS", 0)
                           | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)) if os.name == "nt" else 0,
        )
    except OSError as exc:
        raise DaemonUnavailableError(f"cannot start the daemon: {exc.strerror}",
                                     hint=unavailable_hint(paths)) from None
    finally:
        if log_file is not subprocess.DEVNULL:
            log_file.close()
    wait_until_listening(paths, proc, timeout)
    return proc.pid


def wait_until_listening(paths: TelemetryPaths, proc, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_listening(paths):
            return
        code = proc.poll()
        if code is not None:
            if is_listening(paths):  # lost a start race to another daemon: fine
                return
            reason = last_daemon_message(paths.daemon_log)
            raise DaemonUnavailableError(
                f"the daemon exited during start (code {code})" + (f": {reason}" if reason else ""),
                hint=unavailable_hint(paths))
        time.sleep(_POLL_STEP)
    raise DaemonUnavailableError(f"the daemon did not start listening within {timeout:g}s",
                                 hint=unavailable_hint(paths))


def wait_until_stopped(paths: TelemetryPaths, pid: int | None, timeout: float) -> bool:
    """Wait for the daemon to go away (socket closed and pid gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_listening(paths) and (pid is None or not pid_alive(pid)):
            return True
        time.sleep(_POLL_STEP)
    return False


def last_daemon_message(log_file: Path) -> str | None:
    """The daemon's own last `branchpy-telemetryd: …` line (why it refused to start)."""
    try:
        with open(log_file, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 4096))
            tail = fh.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(tail):
        if line.startswith(DAEMON_SCRIPT + ": "):
            return line[len(DAEMON_SCRIPT) + 2:]
    return None


def _open_log(paths: TelemetryPaths):
    import subprocess

    try:  # private: the log names this user's folders and commands
        ensure_private_dir(paths.log_dir)
        fd = os.open(paths.daemon_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0),
                     0o600)
        return os.fdopen(fd, "ab")
    except OSError:
        return subprocess.DEVNULL


def pid_alive(pid: int) -> bool:
    """True while `pid` runs (an exited, not yet reaped process counts as gone)."""
    if os.name == "nt":  # os.kill(pid, 0) would terminate it there; callers also check the socket
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # our own child that exited stays a zombie until reaped: reap it
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    except ChildProcessError:
        pass
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """An exited process nobody reaped yet (init may take a while in containers)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False
