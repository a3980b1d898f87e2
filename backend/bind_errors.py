"""Why `serve`/`up` could not listen, in words and with a way out (never a traceback).

`bind_error` turns the OSError of a failed bind into a `ListenError` (exit 1)
whose message says what is on the port when it can tell: another BranchPy
telemetry backend (it answers our health check) or something else.
"""

from __future__ import annotations

import errno
import json
import urllib.error
import urllib.request

from branchpy_telemetry.client.contracts.errors import ListenError

HEALTH_PROBE_TIMEOUT_S = 1.0


def bind_error(exc: OSError, host: str, port: int) -> ListenError:
    where = f"{host}:{port}"
    other_port = "pick another port with --port (0 picks a free one and prints it)"
    if exc.errno == errno.EADDRINUSE:
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '', '::') else host}:{port}"
        if answers_as_backend(url):
            return ListenError(f"a BranchPy telemetry backend is already running at {url}",
                               hint=f"use it (dashboard {url}/dashboard), stop it (Ctrl-C in its terminal, "
                                    f"or its service), or {other_port}")
        return ListenError(f"port {port} is in use on {host} (by another program)", hint=other_port)
    if exc.errno == errno.EACCES:
        return ListenError(f"not allowed to listen on {where}: {exc.strerror}",
                           hint="ports below 1024 need root; " + other_port)
    if exc.errno == errno.EADDRNOTAVAIL:
        return ListenError(f"cannot listen on {where}: {host} is not an address of this machine",
                           hint="use --host 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)")
    return ListenError(f"cannot listen on {where}: {exc.strerror or exc}", hint=other_port)


def answers_as_backend(url: str) -> bool:
    """True when `url` answers our `/api/telemetry/health` (the answer names schema versions)."""
    try:
        health = f"{url}/api/telemetry/health"
        with urllib.request.urlopen(health, timeout=HEALTH_PROBE_TIMEOUT_S) as response:
            body = json.loads(response.read(65536))
    except urllib.error.HTTPError as exc:  # 503: ours, with a sink down
        try:
            body = json.loads(exc.read(65536))
        except (OSError, ValueError):
            return False
    except (OSError, ValueError):
        return False
    return isinstance(body, dict) and "schema_versions" in body
