"""Running the app under waitress (a production WSGI server, not Flask's).

Waitress answers some requests itself before the app sees them (a
Content-Length over `max_request_body_size`, malformed HTTP); those answers
get the same JSON error envelope as the app's, through a small ErrorTask.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

from waitress.channel import HTTPChannel
from waitress.server import create_server as _waitress_create_server
from waitress.task import ErrorTask

from .errors import error_envelope_bytes

# waitress error class name -> our stable code
_CODES = {
    "BadRequest": "bad_request", "RequestHeaderFieldsTooLarge": "headers_too_large",
    "RequestEntityTooLarge": "payload_too_large", "InternalServerError": "internal_error",
    "ServerNotImplemented": "not_implemented",
}


class JsonErrorTask(ErrorTask):
    def execute(self):
        error = self.request.error
        code = _CODES.get(type(error).__name__, "http_error")
        body = error_envelope_bytes(code, error.reason.lower())
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class JsonErrorChannel(HTTPChannel):
    error_task_class = JsonErrorTask


def create_server(app, *, host: str = "127.0.0.1", port: int = 8787, threads: int = 4,
                  max_body_bytes: int | None = None):
    """A bound (not yet running) waitress server; `server.effective_port` is the real port."""
    options: dict = {"host": host, "port": port, "threads": threads, "ident": "branchpy-telemetry",
                     "clear_untrusted_proxy_headers": True, "channel_timeout": 60}
    if max_body_bytes is not None:
        # Content-Length over this is refused before the body is read. Gzip bodies may not
        # exceed the cap compressed either (the app also checks the decompressed size).
        options["max_request_body_size"] = max_body_bytes + 1
    server = _waitress_create_server(app, **options)
    server.channel_class = JsonErrorChannel
    return server


def stop_on_signals() -> None:
    """SIGINT (Ctrl-C) and SIGTERM stop the server: both raise KeyboardInterrupt in the main
    thread. Installed explicitly, so a SIGINT disposition inherited as ignored (a background
    job of a script) does not leave a server that `kill -INT` cannot stop."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_interrupt)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def serve(app, *, host: str, port: int, threads: int, max_body_bytes: int | None,
          on_ready: Callable[[str, int], None] | None = None) -> None:
    server = create_server(app, host=host, port=port, threads=threads, max_body_bytes=max_body_bytes)
    if on_ready is not None:
        on_ready(server.effective_host, server.effective_port)
    try:
        server.run()
    finally:
        server.close()
