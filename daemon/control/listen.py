"""Bind the control (ROUTER) and progress (PUB) sockets on this platform's transport.

ipc (default): sockets in the private run dir, 0600 from the moment they exist
(umask during bind, chmod after). tcp (Windows, or BRANCHPY_TELEMETRY_TRANSPORT=tcp):
random loopback ports, a ZAP handler that only admits 127.0.0.1 peers presenting
the PLAIN token, and the address + token published in a 0600 file (client/contracts/transport.py).
"""

from __future__ import annotations

import os
import secrets

import zmq

from branchpy_telemetry.client.contracts.paths import TelemetryPaths
from branchpy_telemetry.client.contracts.socket_dir import claim_run_dir
from branchpy_telemetry.client.contracts.transport import (
    PLAIN_USER,
    ControlAddress,
    publish_address,
    wants_tcp,
)

LOOPBACK = "127.0.0.1"


class Listener:
    def __init__(self, context: zmq.Context, paths: TelemetryPaths):
        self.context = context
        self.paths = paths
        self.address: ControlAddress | None = None
        self._auth = None

    def bind(self, router: zmq.Socket, pub: zmq.Socket) -> ControlAddress:
        claim_run_dir(self.paths)  # ours, 0700, not a symlink: or InsecureSocketDirError
        self._remove_files()  # stale ones from a crash: we hold the instance lock
        self.address = self._bind_tcp(router, pub) if wants_tcp() else self._bind_ipc(router, pub)
        return self.address

    def close(self) -> None:
        """Remove the socket/address files and stop the auth thread (sockets closed by the caller)."""
        self._remove_files()
        if self._auth is not None:
            self._auth.stop()
            self._auth = None

    def _bind_ipc(self, router: zmq.Socket, pub: zmq.Socket) -> ControlAddress:
        paths = self.paths
        old_umask = os.umask(0o177)
        try:  # progress first: a client that finds the control socket finds the progress one too
            pub.bind(paths.progress_endpoint)
            paths.progress_socket.chmod(0o600)
            router.bind(paths.control_endpoint)
            paths.control_socket.chmod(0o600)
        finally:
            os.umask(old_umask)
        return ControlAddress(paths.control_endpoint, paths.progress_endpoint)

    def _bind_tcp(self, router: zmq.Socket, pub: zmq.Socket) -> ControlAddress:
        from zmq.auth.thread import ThreadAuthenticator

        token = secrets.token_urlsafe(32)
        self._auth = ThreadAuthenticator(self.context)
        self._auth.start()
        self._auth.allow(LOOPBACK)
        self._auth.configure_plain(domain="*", passwords={PLAIN_USER: token})
        for sock in (router, pub):
            sock.plain_server = True
        control = router.bind_to_random_port(f"tcp://{LOOPBACK}")
        progress = pub.bind_to_random_port(f"tcp://{LOOPBACK}")
        address = ControlAddress(f"tcp://{LOOPBACK}:{control}", f"tcp://{LOOPBACK}:{progress}", token)
        publish_address(self.paths, address)
        return address

    def _remove_files(self) -> None:
        for path in (self.paths.control_socket, self.paths.progress_socket, self.paths.control_address_file):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
