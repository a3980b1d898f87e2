"""The control plane: ROUTER (requests) + PUB (progress), one error boundary.

Frames on the ROUTER are `[identity, b"", json]` (REQ and DEALER clients
that send the empty delimiter) or `[identity, json]` (bare DEALER); the reply
goes back in the same envelope. Anything else is answered with a
`malformed_request` error, never dropped and never fatal.

Quick commands run in the loop thread. Background ones (the command table's
`background` column, client/contracts/commands.py) run on a few worker
threads, so `status` keeps answering during an export; a worker hands its
reply (and its progress) back to the loop over an inproc PUSH socket,
because zmq sockets belong to one thread. A request id seen again
(a Lazy Pirate resend) is not run twice: it joins the running job or gets the
cached reply.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import structlog
import zmq

from branchpy_telemetry.client.contracts.errors import (
    MalformedRequestError,
    TelemetryError,
    UnknownCommandError,
)
from branchpy_telemetry.client.contracts.limits import MAX_CONTROL_FRAME_BYTES
from branchpy_telemetry.client.contracts.protocol import (
    PROGRESS_TOPIC,
    Progress,
    decode_request,
    encoder,
    error_reply,
    ok_reply,
)
from branchpy_telemetry.daemon.control.context import DaemonContext, RequestContext
from branchpy_telemetry.daemon.control.listen import Listener

log = structlog.get_logger(__name__)

Handler = Callable[[RequestContext, dict[str, Any]], Any]

REPLY_CACHE_SIZE = 256
WORKERS = 2


def run_handler(handler: Handler, ctx: RequestContext, args: dict[str, Any]) -> bytes:
    """The one error boundary: any outcome becomes an encoded Reply."""
    try:
        return encoder.encode(ok_reply(ctx.request_id, handler(ctx, args)))
    except TelemetryError as exc:
        log.info("request.failed", cmd=ctx.cmd, id=ctx.request_id, code=exc.code, message=exc.message)
        return encode_error(ctx.request_id, exc)
    except Exception as exc:
        log.exception("request.crashed", cmd=ctx.cmd, id=ctx.request_id)
        return encoder.encode(error_reply(
            ctx.request_id, "internal_error", f"{ctx.cmd} failed: internal error ({type(exc).__name__})",
            hint="see the daemon log for the details"))


def encode_error(request_id: str | None, exc: TelemetryError) -> bytes:
    return encoder.encode(error_reply(request_id, exc.code, exc.message, hint=exc.hint, details=exc.details))


def parse_request(body: list[bytes], commands: Mapping[str, Handler]) -> tuple[str, str, dict[str, Any]]:
    """Validate one request body; (id, cmd, args) or a MalformedRequest/UnknownCommand/TooLarge error.

    The error carries the request id in `details` when one could be read.
    """
    if len(body) != 1:
        raise MalformedRequestError(f"expected one JSON frame after the envelope, got {len(body)} frames")
    request = decode_request(body[0])
    if request.cmd not in commands:
        exc = UnknownCommandError(f"unknown command {request.cmd!r}",
                                  hint="commands: " + ", ".join(sorted(commands)))
        exc.details = {"id": request.id}
        raise exc
    return request.id, request.cmd, request.args


class ControlServer:
    def __init__(self, daemon: DaemonContext, registry: Mapping[str, Handler], background: frozenset[str],
                 *, wakeup_fd: int | None = None, workers: int = WORKERS):
        self.daemon = daemon
        self.registry = registry
        self.background = background
        self.wakeup_fd = wakeup_fd
        self._context = zmq.Context()
        self._listener = Listener(self._context, daemon.paths)
        self._router: zmq.Socket | None = None
        self._pub: zmq.Socket | None = None
        self._results: zmq.Socket | None = None
        self._results_endpoint = f"inproc://results-{id(self)}"
        self._jobs: queue.Queue = queue.Queue()
        self._local = threading.local()
        self._in_flight: dict[tuple[str, str], list[list[bytes]]] = {}
        self._recent: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._workers = workers
        self._threads: list[threading.Thread] = []
        self._last_activity = time.monotonic()
        # Called on every loop turn, at least every `tick_s` seconds (the systemd watchdog ping).
        self.on_tick: Callable[[], None] | None = None
        self.tick_s: float | None = None

    # -- set-up and tear-down -------------------------------------------------
    def bind(self) -> None:
        self._router = self._context.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 0)
        self._router.setsockopt(zmq.MAXMSGSIZE, MAX_CONTROL_FRAME_BYTES)
        self._pub = self._context.socket(zmq.PUB)
        self._pub.setsockopt(zmq.LINGER, 0)
        address = self._listener.bind(self._router, self._pub)
        self.daemon.endpoint, self.daemon.progress_endpoint = address.control, address.progress
        self._results = self._context.socket(zmq.PULL)
        self._results.setsockopt(zmq.LINGER, 0)
        self._results.bind(self._results_endpoint)
        self.daemon.publish_progress = self._publish_progress
        for n in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("daemon.listening", socket=address.control, progress=address.progress)

    def close(self, worker_grace: float = 1.0) -> None:
        """Close every socket (linger 0) and remove the socket files.

        Idle workers stop at once; a worker still inside a long job is left
        behind (a daemon thread: it dies with the process) rather than waited for.
        """
        for _ in self._threads:
            self._jobs.put(None)
        for sock in (self._router, self._pub, self._results):
            if sock is not None:
                sock.close(linger=0)
        self._router = self._pub = self._results = None
        self.daemon.publish_progress = None
        self._listener.close()
        deadline = time.monotonic() + worker_grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if not any(thread.is_alive() for thread in self._threads):
            self._context.term()
        self._threads.clear()

    # -- the loop --------------------------------------------------------------
    def serve(self) -> str:
        """Serve until shutdown; returns why it stopped ("shutdown" or "idle")."""
        assert self._router is not None and self._results is not None
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._results, zmq.POLLIN)
        if self.wakeup_fd is not None:
            poller.register(self.wakeup_fd, zmq.POLLIN)
        while not self.daemon.shutdown_event.is_set():
            timeout = self._idle_timeout_ms()
            if timeout == 0:
                log.info("daemon.idle_exit", idle_timeout_s=self.daemon.idle_timeout)
                return "idle"
            if self.on_tick is not None:
                self.on_tick()
                if self.tick_s:
                    tick_ms = max(1, int(self.tick_s * 1000))
                    timeout = tick_ms if timeout is None else min(timeout, tick_ms)
            ready = dict(poller.poll(timeout))
            if self.wakeup_fd is not None and self.wakeup_fd in ready:
                drain_fd(self.wakeup_fd)
            if self._results in ready:
                self._on_result(self._results.recv_multipart())
            if self._router in ready:
                self._on_frames(self._router.recv_multipart())
        return "shutdown"

    def _idle_timeout_ms(self) -> int | None:
        """Milliseconds until an idle exit (manual mode only); None = wait forever."""
        idle = self.daemon.idle_timeout
        if self.daemon.mode != "manual" or idle <= 0:
            return None
        if self._in_flight:  # a running job is activity; look again later
            return int(idle * 1000)
        left = self._last_activity + idle - time.monotonic()
        return max(1, int(left * 1000)) if left > 0 else 0

    def _on_frames(self, frames: list[bytes]) -> None:
        self._last_activity = time.monotonic()
        if len(frames) >= 2 and frames[1] == b"":
            envelope, body = frames[:2], frames[2:]
        else:
            envelope, body = frames[:1], frames[1:]
        try:
            request_id, cmd, args = parse_request(body, self.registry)
        except TelemetryError as exc:
            details = dict(exc.details) if isinstance(exc.details, dict) else {}
            request_id = details.pop("id", None)
            exc.details = details or None  # e.g. the limit a too_large request broke
            log.info("request.rejected", code=exc.code, message=exc.message)
            self._send(envelope, encode_error(request_id, exc))
            return
        key = (request_id, cmd)
        if key in self._in_flight:  # a resend of a running job: answer both when done
            self._in_flight[key].append(envelope)
            return
        if key in self._recent:  # a resend of a finished one: same answer, not run again
            self._send(envelope, self._recent[key])
            return
        ctx = RequestContext(self.daemon, request_id, cmd)
        handler = self.registry[cmd]
        if cmd in self.background:
            self._in_flight[key] = [envelope]
            self._jobs.put((key, handler, ctx, args))
            return
        self._finish(key, [envelope], run_handler(handler, ctx, args))

    def _on_result(self, frames: list[bytes]) -> None:
        kind = frames[0]
        if kind == b"progress":
            if self._pub is not None:
                self._pub.send(PROGRESS_TOPIC + frames[1])
            return
        key = (frames[1].decode(), frames[2].decode())
        self._last_activity = time.monotonic()
        self._finish(key, self._in_flight.pop(key, []), frames[3])

    def _finish(self, key: tuple[str, str], envelopes: list[list[bytes]], payload: bytes) -> None:
        self._recent[key] = payload
        while len(self._recent) > REPLY_CACHE_SIZE:
            self._recent.popitem(last=False)
        for envelope in envelopes:
            self._send(envelope, payload)

    def _send(self, envelope: list[bytes], payload: bytes) -> None:
        assert self._router is not None
        try:
            self._router.send_multipart([*envelope, payload])
        except zmq.ZMQError as exc:  # peer gone: nothing to do but say so
            log.warning("reply.undeliverable", error=exc.strerror)

    # -- worker threads ----------------------------------------------------------
    def _worker_socket(self) -> zmq.Socket:
        sock = getattr(self._local, "push", None)
        if sock is None:
            sock = self._context.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self._results_endpoint)
            self._local.push = sock
        return sock

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                sock = getattr(self._local, "push", None)
                if sock is not None:
                    sock.close(linger=0)
                return
            key, handler, ctx, args = job
            payload = run_handler(handler, ctx, args)
            try:
                self._worker_socket().send_multipart(
                    [b"reply", key[0].encode(), key[1].encode(), payload])
            except zmq.ZMQError:  # the server closed during shutdown
                return

    def _publish_progress(self, request_id: str, cmd: str, stage: str, done: int, total: int | None) -> None:
        data = encoder.encode(Progress(id=request_id, cmd=cmd, stage=stage, done=done, total=total))
        try:
            if threading.current_thread() is threading.main_thread():
                if self._pub is not None:
                    self._pub.send(PROGRESS_TOPIC + data)
            else:
                self._worker_socket().send_multipart([b"progress", data])
        except zmq.ZMQError:
            pass  # progress is best effort; the reply is what counts


def drain_fd(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except (BlockingIOError, InterruptedError):
        pass

