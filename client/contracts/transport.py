"""Which transport the control plane uses, and how a client finds the daemon.

- `ipc://` Unix sockets under the private run dir (0700 dir, 0600 sockets): the
  default wherever libzmq supports ipc.
- `tcp://127.0.0.1:<random port>` where it does not (Windows builds): the daemon
  binds random loopback ports and writes them, with a random token, to
  `<run dir>/control.json` (0600). Clients authenticate with ZMQ's PLAIN
  mechanism (user `branchpy`, password = token), so the JSON protocol itself
  is the same on both transports; a peer without the token cannot send commands.

`BRANCHPY_TELEMETRY_TRANSPORT=ipc|tcp` forces a transport (tests use it to
exercise the fallback on Linux).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from branchpy_telemetry.client.contracts.paths import TelemetryPaths
from branchpy_telemetry.client.infra.atomic_write import write_atomic

TRANSPORT_ENV = "BRANCHPY_TELEMETRY_TRANSPORT"
PLAIN_USER = "branchpy"


@dataclass(frozen=True)
class ControlAddress:
    control: str
    progress: str
    token: str | None = None  # PLAIN password (tcp only)


def wants_tcp(env: Mapping[str, str] | None = None) -> bool:
    choice = (os.environ if env is None else env).get(TRANSPORT_ENV, "").strip().lower()
    if choice in ("ipc", "tcp"):
        return choice == "tcp"
    if sys.platform == "win32":
        return True
    import zmq

    return not zmq.has("ipc")


def describe(paths: TelemetryPaths, env: Mapping[str, str] | None = None) -> str:
    """What a person should look at: the socket, or the address file on tcp."""
    if wants_tcp(env):
        return f"tcp://127.0.0.1 (address file {paths.control_address_file})"
    return paths.control_endpoint


def find_address(paths: TelemetryPaths, env: Mapping[str, str] | None = None) -> ControlAddress | None:
    """Where the daemon listens; None on tcp when no daemon published its address.

    Raises InsecureSocketDirError when the run folder (or the address file in
    it) is not this user's own: nothing is to be sent there.
    """
    from branchpy_telemetry.client.contracts.socket_dir import check_run_dir, read_private_file

    present = check_run_dir(paths)
    if not wants_tcp(env):
        return ControlAddress(paths.control_endpoint, paths.progress_endpoint)
    if not present:
        return None
    try:
        data = json.loads(read_private_file(paths.control_address_file) or b"")
        return ControlAddress(str(data["control"]), str(data["progress"]), str(data["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def publish_address(paths: TelemetryPaths, address: ControlAddress) -> None:
    """Write the tcp address + token for clients: private (0600), atomic."""
    body = {"control": address.control, "progress": address.progress, "token": address.token}
    write_atomic(paths.control_address_file, json.dumps(body).encode())

