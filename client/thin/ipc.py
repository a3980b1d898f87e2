"""The control client (docs/control-protocol.md): the "Lazy Pirate" pattern from the zguide.

A DEALER socket sends one request `[b"", json]` and polls for the reply with a
timeout; on timeout it closes the socket with linger 0, opens a fresh one and
resends the *same* request id (the daemon answers a repeated id once, so a
resend never runs a command twice), and gives up after `retries` tries.
No zmq exception leaves this module: transport trouble becomes
`DaemonUnavailableError`, an error reply becomes the matching `TelemetryError`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec
import zmq

from branchpy_telemetry.client.contracts import errors
from branchpy_telemetry.client.contracts.bounded_input import too_large
from branchpy_telemetry.client.contracts.commands import TIMEOUT_SECONDS
from branchpy_telemetry.client.contracts.limits import MAX_CONTROL_MESSAGE_BYTES
from branchpy_telemetry.client.contracts.paths import TelemetryPaths
from branchpy_telemetry.client.contracts.protocol import (
    PROGRESS_TOPIC,
    Progress,
    Reply,
    Request,
    encoder,
    progress_decoder,
    reply_decoder,
)
from branchpy_telemetry.client.contracts.transport import PLAIN_USER, find_address

DEFAULT_TIMEOUT = TIMEOUT_SECONDS["quick"]
DEFAULT_RETRIES = 3

# Error code on the wire -> the exception class the caller sees.
_ERROR_CLASSES: dict[str, type[errors.TelemetryError]] = {cls.code: cls for cls in errors.ERROR_CLASSES}


def error_from_reply(reply: Reply) -> errors.TelemetryError:
    """An error reply as the exception class its code names (base class if unknown)."""
    body = reply.error
    if body is None:
        return errors.TelemetryError("daemon sent an error reply without an error body")
    cls = _ERROR_CLASSES.get(body.code, errors.TelemetryError)
    exc = cls(body.message, hint=body.hint, details=body.details)
    exc.code = body.code  # keep a code this client does not know yet
    return exc


class ControlClient:
    """One connection to the daemon's control socket. Not thread-safe: one per thread."""

    def __init__(self, endpoint: str, *, timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES,
                 progress_endpoint: str | None = None, token: str | None = None,
                 context: zmq.Context | None = None):
        self.endpoint = endpoint
        self.progress_endpoint = progress_endpoint
        self.token = token  # tcp transport only: PLAIN password (see transport.py)
        self.timeout = timeout
        self.retries = max(1, retries)
        self._context = context or zmq.Context.instance()
        self._socket: zmq.Socket | None = None

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def call(self, cmd: str, args: dict[str, Any] | None = None, *, timeout: float | None = None,
             retries: int | None = None, request_id: str | None = None,
             on_progress: Callable[[Progress], None] | None = None) -> Any:
        """Send `cmd` and return the reply's `result`; raise the reply's error."""
        reply = self.request(cmd, args, timeout=timeout, retries=retries, request_id=request_id,
                             on_progress=on_progress)
        if not reply.ok:
            raise error_from_reply(reply)
        return reply.result

    def request(self, cmd: str, args: dict[str, Any] | None = None, *, timeout: float | None = None,
                retries: int | None = None, request_id: str | None = None,
                on_progress: Callable[[Progress], None] | None = None) -> Reply:
        """Send `cmd` and return the whole Reply (ok or error).

        With `on_progress` (and a `progress_endpoint`), progress messages for
        this request are delivered while waiting.
        """
        request = Request(id=request_id or str(uuid.uuid4()), cmd=cmd, args=args or {})
        payload = encoder.encode(request)
        if len(payload) > MAX_CONTROL_MESSAGE_BYTES:  # the daemon would refuse it: say so now
            raise too_large(f"the {cmd} request", len(payload), MAX_CONTROL_MESSAGE_BYTES)
        timeout_ms = int((self.timeout if timeout is None else timeout) * 1000)
        tries = self.retries if retries is None else max(1, retries)
        listener = None
        try:
            if on_progress is not None and self.progress_endpoint:
                listener = ProgressListener(self.progress_endpoint, request.id, self._context,
                                            token=self.token)
            for _ in range(tries):
                reply = self._try_once(payload, request.id, timeout_ms, listener, on_progress)
                if reply is not None:
                    return reply
                self.close()  # Lazy Pirate: the socket may be confused; start afresh
        except zmq.ZMQError as exc:
            self.close()
            raise errors.DaemonUnavailableError(
                f"cannot talk to the daemon at {self.endpoint}: {exc.strerror}",
                hint="check `branchpy telemetry daemon status`") from None
        finally:
            if listener is not None:
                listener.close()
        raise errors.DaemonUnavailableError(
            f"no reply from the daemon at {self.endpoint} after {tries} "
            f"tr{'y' if tries == 1 else 'ies'} of {timeout_ms / 1000:g}s",
            hint="the daemon may be busy or hung; see its log, or retry with a larger --timeout")

    def _connected(self) -> zmq.Socket:
        if self._socket is None:
            sock = self._context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            _set_credentials(sock, self.token)
            sock.connect(self.endpoint)
            self._socket = sock
        return self._socket

    def _try_once(self, payload: bytes, request_id: str, timeout_ms: int,
                  listener: ProgressListener | None,
                  on_progress: Callable[[Progress], None] | None) -> Reply | None:
        sock = self._connected()
        sock.send_multipart([b"", payload])
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        if listener is not None:
            poller.register(listener.socket, zmq.POLLIN)
        deadline = _monotonic_ms() + timeout_ms
        remaining = timeout_ms
        while remaining > 0:
            ready = dict(poller.poll(remaining))
            if listener is not None and on_progress is not None and listener.socket in ready:
                listener.drain(on_progress)
            if sock in ready:
                reply = _decode_reply(sock.recv_multipart())
                if reply is not None and (reply.id == request_id or _unattributed_error(reply)):
                    return reply
                # a stale or foreign reply: keep waiting
            remaining = deadline - _monotonic_ms()
        return None


class ProgressListener:
    """Subscribes to the daemon's progress PUB socket; calls `on_progress` for one request id."""

    def __init__(self, endpoint: str, request_id: str, context: zmq.Context | None = None, *,
                 token: str | None = None):
        self.request_id = request_id
        self._socket = (context or zmq.Context.instance()).socket(zmq.SUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        _set_credentials(self._socket, token)
        self._socket.setsockopt(zmq.SUBSCRIBE, PROGRESS_TOPIC)
        self._socket.connect(endpoint)

    @property
    def socket(self) -> zmq.Socket:
        return self._socket

    def drain(self, on_progress: Callable[[Progress], None]) -> None:
        """Deliver every progress message already received (never blocks)."""
        while self._socket.poll(0, zmq.POLLIN):
            data = self._socket.recv()
            try:
                progress = progress_decoder.decode(data[len(PROGRESS_TOPIC):])
            except msgspec.DecodeError:
                continue
            if progress.id == self.request_id:
                on_progress(progress)

    def close(self) -> None:
        self._socket.close(linger=0)


def _set_credentials(sock: zmq.Socket, token: str | None) -> None:
    if token:  # the daemon's ZAP handler checks these (tcp transport)
        sock.plain_username = PLAIN_USER.encode()
        sock.plain_password = token.encode()


def _decode_reply(frames: list[bytes]) -> Reply | None:
    if len(frames) != 2 or frames[0] != b"":
        return None
    try:
        return reply_decoder.decode(frames[1])
    except (msgspec.DecodeError, RecursionError):
        return None


def _unattributed_error(reply: Reply) -> bool:
    """An error reply without an id: the daemon could not read our request (too large,
    not JSON). This socket has one request out at a time, so it answers that one."""
    return reply.id is None and not reply.ok


def _monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


def open_control_client(paths: TelemetryPaths, *, timeout: float | None = None, retries: int | None = None):
    """A ControlClient for this user's daemon, on whichever transport is in use."""
    address = find_address(paths)
    if address is None:
        raise errors.DaemonUnavailableError(f"no daemon address in {paths.control_address_file}",
                                            hint="start it with `branchpy telemetry daemon start`")
    return ControlClient(address.control, timeout=timeout or DEFAULT_TIMEOUT,
                         retries=retries or DEFAULT_RETRIES, progress_endpoint=address.progress,
                         token=address.token)
