"""Running the app under waitress (a production WSGI server, not Flask's).

Waitress answers some requests itself before the app sees them (a
Content-Length over `max_request_body_size`, malformed HTTP, a deadline
missed); those answers get the same JSON error envelope as the app's,
through a small ErrorTask.

Slow clients. Waitress reads every request on its event loop and hands it to
a worker thread only once it is complete, so a slow client holds a
connection slot, never a worker. What bounds slots and time (`ServerLimits`):
- `connection_limit` open connections (waitress' default of 100 let 100 slow
  clients lock everyone out); the process' open-file limit is raised to fit;
- `keepalive_timeout_s`: an idle connection is closed after this. Behind a
  load balancer it must exceed the balancer's idle timeout (60 s on common
  ones), or the balancer may reuse a connection the server just closed;
- `header_timeout_s`: a request's headers must be complete this long after
  its first byte;
- `body_timeout_s` + `body_min_rate`: the body must then arrive at a mean
  rate of at least `body_min_rate` bytes/s after a grace of `body_timeout_s`
  (Apache mod_reqtimeout's rule: body=10,MinRate=…).
A request past its deadline gets 408 `request_timeout` and the connection is closed.
"""

from __future__ import annotations

import resource
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

import structlog
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import MultiSocketServer, TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher
from waitress.utilities import Error

from branchpy_telemetry.backend.errors import (
    ApiError,
    BadRequestError,
    PayloadTooLargeError,
    RequestTimeoutError,
    error_envelope_bytes,
)

log = structlog.get_logger("backend.server")

FD_HEADROOM = 256  # files, database connections, pipes besides the client connections
MAX_HEADER_BYTES = 32 * 1024  # request line + headers; ours are < 2 KiB (waitress' default: 256 KiB)


@dataclass(frozen=True)
class ServerLimits:
    connection_limit: int = 1000
    keepalive_timeout_s: float = 75.0
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    body_min_rate: int = 16 * 1024  # bytes per second
    trusted_proxy: str | None = None  # address whose X-Forwarded-For names the client

    @classmethod
    def from_settings(cls, settings) -> ServerLimits:
        """From BackendSettings, whose fields of the same names hold them."""
        return cls(**{field.name: getattr(settings, field.name) for field in fields(cls)})


class RequestTimeout(Error):
    code = 408
    reason = "Request Timeout"


# waitress error class name -> our stable code and message
_ERRORS = {
    "BadRequest": (BadRequestError.code, "bad request"),
    "RequestHeaderFieldsTooLarge": ("headers_too_large", "request header fields too large"),
    "RequestEntityTooLarge": (PayloadTooLargeError.code, "request entity too large"),
    "InternalServerError": (ApiError.code, "internal server error"),
    "ServerNotImplemented": ("not_implemented", "not implemented"),
    "RequestTimeout": (RequestTimeoutError.code, "the request did not arrive in time; send it again"),
}


class JsonErrorTask(ErrorTask):
    def execute(self):
        error = self.request.error
        code, message = _ERRORS.get(type(error).__name__, ("http_error", error.reason.lower()))
        body = error_envelope_bytes(code, message)
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class TimedRequestParser(HTTPRequestParser):
    """Notes when the request began and when its headers were complete (monotonic clock)."""

    headers_done_at: float | None = None

    def __init__(self, adj):
        super().__init__(adj)
        self.started_at = time.monotonic()

    def received(self, data):
        consumed = super().received(data)
        if self.headers_finished and self.headers_done_at is None:
            self.headers_done_at = time.monotonic()
        return consumed

    def deadline(self, limits: ServerLimits) -> float:
        if self.headers_done_at is None:
            return self.started_at + limits.header_timeout_s
        return self.headers_done_at + limits.body_timeout_s + self.body_bytes_received / limits.body_min_rate


class JsonErrorChannel(HTTPChannel):
    error_task_class = JsonErrorTask
    parser_class = TimedRequestParser

    def expire_request(self) -> None:
        """Answer the request being received with 408 (event-loop thread, like `received`)."""
        with self.requests_lock:
            request = self.request
            if request is None or self.requests or self.will_close:
                return
            request.error = RequestTimeout("deadline")
            request.completed = True
            self.request = None
            self.requests.append(request)
        self.server.add_task(self)


class DeadlineServer(TcpWSGIServer):
    channel_class = JsonErrorChannel
    limits = ServerLimits()

    def maintenance(self, now):
        super().maintenance(now)  # idle connections (keepalive_timeout_s)
        clock = time.monotonic()
        expired = [channel for channel in self.active_channels.values()
                   if isinstance(channel.request, TimedRequestParser) and not channel.requests
                   and clock > channel.request.deadline(self.limits)]
        for channel in expired:
            log.info("http.request_timeout", client=channel.addr[0] if channel.addr else None,
                     headers_done=channel.request.headers_done_at is not None,
                     body_bytes=channel.request.body_bytes_received)
            channel.expire_request()


def create_server(app, *, host: str = "127.0.0.1", port: int = 8787, threads: int = 4,
                  max_body_bytes: int | None = None, limits: ServerLimits = ServerLimits()):
    """A bound (not yet running) waitress server; `server.effective_port` is the real port."""
    connection_limit = fit_open_file_limit(limits.connection_limit)
    options: dict = {"host": host, "port": port, "threads": threads, "ident": "branchpy-telemetry",
                     "clear_untrusted_proxy_headers": True, "connection_limit": connection_limit,
                     "channel_timeout": max(1, round(limits.keepalive_timeout_s)), "cleanup_interval": 1,
                     "max_request_header_size": MAX_HEADER_BYTES, "asyncore_use_poll": True}
    if limits.trusted_proxy:
        options.update(trusted_proxy=limits.trusted_proxy, trusted_proxy_count=1,
                       trusted_proxy_headers={"x-forwarded-for"})
    if max_body_bytes is not None:
        # Content-Length over this is refused before the body is read. Gzip bodies may not
        # exceed the cap compressed either (the app also checks the decompressed size).
        options["max_request_body_size"] = max_body_bytes + 1
    adj = Adjustments(**options)
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    socket_map: dict = {}
    servers = []
    for sockinfo in adj.listen:
        server = DeadlineServer(app, socket_map, dispatcher=dispatcher, adj=adj, sockinfo=sockinfo)
        server.limits = limits
        servers.append(server)
    if len(servers) == 1:
        return servers[0]
    listening = [(s.effective_host, s.effective_port) for s in servers]
    return MultiSocketServer(socket_map, adj, listening, dispatcher, servers[-1].log_info)


def fit_open_file_limit(connection_limit: int) -> int:
    """Raise the soft open-file limit to fit the connections (up to the hard limit);
    the connection limit the process can actually hold."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connection_limit + FD_HEADROOM
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
        soft = new_soft
    if soft != resource.RLIM_INFINITY and soft < wanted:
        fitted = max(1, soft - FD_HEADROOM)
        log.warning("serve.connection_limit_lowered", wanted=connection_limit, fitted=fitted, open_files=soft)
        return fitted
    return connection_limit


def stop_on_signals() -> None:
    """SIGINT (Ctrl-C) and SIGTERM stop the server: both raise KeyboardInterrupt in the main
    thread. Installed explicitly, so a SIGINT disposition inherited as ignored (a background
    job of a script) does not leave a server that `kill -INT` cannot stop."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_interrupt)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def serve(app, *, host: str, port: int, threads: int, max_body_bytes: int | None,
          limits: ServerLimits = ServerLimits(), on_ready: Callable[[str, int], None] | None = None) -> None:
    try:
        server = create_server(app, host=host, port=port, threads=threads, max_body_bytes=max_body_bytes,
                               limits=limits)
    except OSError as exc:
        from branchpy_telemetry.backend.bind_errors import bind_error

        raise bind_error(exc, host, port) from None
    if on_ready is not None:
        listening = getattr(server, "effective_listen", None)  # several addresses (e.g. "localhost")
        on_ready(*(listening[0] if listening else (server.effective_host, server.effective_port)))
    try:
        server.run()
    finally:
        server.close()
