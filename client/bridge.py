"""`branchpy-telemetry-bridge`: the stdio bridge the VS Code extension spawns (DESIGN §9).

stdin, one JSON object per line:   {"id": …, "type": "telemetry.export", "payload": {…}}
stdout, one JSON object per line:  {"id": …, "type": "telemetry.export.result", "ok": …, "payload": …}
                                   {"type": "telemetry.progress", "id": …, "payload": {…}}
stdout carries the protocol only; logs go to stderr. A malformed line gets an
error result, never a crash; EOF ends the bridge (exit 0) once the requests
in flight are answered. Each request runs on its own thread with its own
control client, so a long export does not hold up `telemetry.status`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from typing import Any, TextIO

from .errors import (
    DaemonUnavailableError,
    MalformedRequestError,
    TelemetryError,
    UnknownCommandError,
    UsageError,
)
from .paths import TelemetryPaths, resolve_paths

# Bridge message type -> daemon command (explicit; adding one is one line).
COMMAND_BY_TYPE: dict[str, str] = {
    "telemetry.status": "status",
    "telemetry.export": "export",
    "telemetry.preview": "preview",
    "telemetry.upload": "upload",
    "telemetry.setMode": "mode",
    "telemetry.getConfig": "config.get",
    "telemetry.setConfig": "config.set",
    "telemetry.rotate": "rotate",
    "telemetry.history": "history",
    "telemetry.sync": "sync",
    "telemetry.purge": "purge",
    "telemetry.catalog": "catalog",
}
LONG_COMMANDS = frozenset({"export", "preview", "upload", "sync"})
# Payload paths must be absolute: the bridge's working folder is arbitrary under VS Code.
PATH_ARGS = ("output", "file")
QUICK_TIMEOUT, LONG_TIMEOUT = 5.0, 600.0


class Bridge:
    def __init__(self, paths: TelemetryPaths, out: TextIO, *, start: bool = True,
                 timeout: float | None = None):
        self.paths = paths
        self.out = out
        self.start = start
        self.timeout = timeout
        self._write_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._progress_ids: dict[str, Any] = {}  # daemon request id -> bridge message id
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def write(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, ensure_ascii=False, default=str) + "\n"
        with self._write_lock:
            try:
                self.out.write(line)
                self.out.flush()
            except (BrokenPipeError, ValueError):  # the extension went away: stop quietly
                self._stop.set()

    def handle_line(self, line: str) -> None:
        """Parse one line; answer errors at once, run valid requests on a thread."""
        if not line.strip():
            return
        try:
            message_id, kind, cmd, args = parse_message(line)
        except TelemetryError as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            self.write({"id": details.get("id"), "type": details.get("type", "telemetry.error"),
                        "ok": False, "payload": error_payload(exc)})
            return
        thread = threading.Thread(target=self.run_request, args=(message_id, kind, cmd, args), daemon=True)
        self._threads.append(thread)
        thread.start()

    def run_request(self, message_id: Any, kind: str, cmd: str, args: dict[str, Any]) -> None:
        import uuid

        from .transport import open_control_client

        request_id = str(uuid.uuid4())
        self._progress_ids[request_id] = message_id
        client = None
        try:
            with self._start_lock:
                from .daemon_launcher import require_daemon

                require_daemon(self.paths, start=self.start)
            timeout = self.timeout or (LONG_TIMEOUT if cmd in LONG_COMMANDS else QUICK_TIMEOUT)
            client = open_control_client(self.paths, timeout=timeout)
            reply = client.request(cmd, args, request_id=request_id)
            if reply.ok:
                self.write({"id": message_id, "type": kind + ".result", "ok": True, "payload": reply.result})
            else:
                body = {k: v for k, v in (("code", reply.error.code), ("message", reply.error.message),
                                          ("hint", reply.error.hint), ("details", reply.error.details))
                        if v is not None}
                self.write({"id": message_id, "type": kind + ".result", "ok": False, "payload": body})
        except DaemonUnavailableError as exc:
            from .daemon_launcher import unavailable_hint

            exc.hint = unavailable_hint(self.paths)
            self.write({"id": message_id, "type": kind + ".result", "ok": False,
                        "payload": error_payload(exc)})
        except Exception as exc:  # never let one request kill the bridge
            self.write({"id": message_id, "type": kind + ".result", "ok": False,
                        "payload": {"code": "internal_error",
                                    "message": f"bridge error ({type(exc).__name__}: {exc})"}})
        finally:
            if client is not None:
                client.close()
            self._progress_ids.pop(request_id, None)

    def forward_progress(self) -> None:
        """Relay the daemon's progress messages for our requests until stopped.

        The subscription follows the daemon's address: on tcp it is only known
        (and may change) when a daemon publishes it, so it is re-read while idle.
        """
        import msgspec
        import zmq

        from .ipc import ProgressListener
        from .protocol import PROGRESS_TOPIC, progress_decoder
        from .transport import find_address

        listener, address = None, None
        try:
            while not self._stop.is_set():
                if listener is None or not self._progress_ids:
                    current = find_address(self.paths)
                    if current != address:
                        if listener is not None:
                            listener.close()
                        listener, address = None, current
                        if current is not None:
                            listener = ProgressListener(current.progress, "", token=current.token)
                if listener is None or not listener.socket.poll(100, zmq.POLLIN):
                    if listener is None:
                        self._stop.wait(0.1)
                    continue
                data = listener.socket.recv()
                try:
                    progress = progress_decoder.decode(data[len(PROGRESS_TOPIC):])
                except msgspec.DecodeError:
                    continue
                if progress.id in self._progress_ids:
                    payload = msgspec.to_builtins(progress)
                    payload.pop("id", None)
                    self.write({"type": "telemetry.progress", "id": self._progress_ids[progress.id],
                                "payload": payload})
        finally:
            if listener is not None:
                listener.close()

    def run(self, lines) -> int:
        forwarder = threading.Thread(target=self.forward_progress, daemon=True)
        forwarder.start()
        try:
            for line in lines:
                self.handle_line(line)
            for thread in self._threads:
                thread.join()
        finally:
            self._stop.set()
            forwarder.join(5)
        return 0


def parse_message(line: str) -> tuple[Any, str, str, dict[str, Any]]:
    """(message id, type, daemon command, args) or a MalformedRequest/UnknownCommand error."""
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise MalformedRequestError(f"not valid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise MalformedRequestError(f"a message must be a JSON object, got {type(message).__name__}")
    message_id = message.get("id")
    kind = message.get("type")
    where = {"id": message_id}
    if not isinstance(kind, str) or not kind:
        raise MalformedRequestError('a message needs a "type" string', details=where)
    where["type"] = kind + ".result"
    if kind not in COMMAND_BY_TYPE:
        raise UnknownCommandError(f"unknown message type {kind!r}",
                                  hint="types: " + ", ".join(COMMAND_BY_TYPE), details=where)
    payload = message.get("payload", {})
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise MalformedRequestError(f'"payload" must be a JSON object, got {type(payload).__name__}',
                                    details=where)
    args = with_consent(COMMAND_BY_TYPE[kind], dict(payload))
    check_absolute_paths(args, where)
    return message_id, kind, COMMAND_BY_TYPE[kind], args


def check_absolute_paths(args: dict[str, Any], where: dict[str, Any]) -> None:
    """Refuse a relative (or `~`) path in the payload: nothing is guessed from our working folder."""
    for name in PATH_ARGS:
        value = args.get(name)
        if isinstance(value, str) and not os.path.isabs(value):
            raise UsageError(f'"{name}" must be an absolute path, got {value!r}',
                             hint="the bridge does not resolve paths against its working folder; "
                                  "send an absolute path (e.g. under the workspace or globalStorage folder)",
                             details=where)


def with_consent(cmd: str, args: dict[str, Any], env=None) -> dict[str, Any]:
    """The request's consent, from the payload (the extension's telemetry setting:
    `"consent": "off"`) and from the bridge's own environment (`DO_NOT_TRACK`).

    Withdrawn in either, the daemon refuses the delivery. Commands that take no
    consent argument never receive one.
    """
    from .consent import CONSENT_COMMANDS, caller_consent_args

    payload_consent = args.pop("consent", None)
    payload_source = args.pop("consent_source", None)
    if cmd not in CONSENT_COMMANDS:
        return args
    from_env = caller_consent_args(env)
    if from_env:
        return {**args, **from_env}
    if payload_consent not in (None, "on", True):
        source = payload_source if isinstance(payload_source, str) and payload_source else \
            "the extension's telemetry setting"
        return {**args, "consent": "off", "consent_source": source}
    return args


def error_payload(exc: TelemetryError) -> dict[str, Any]:
    return {"code": exc.code, "message": exc.message, **({"hint": exc.hint} if exc.hint else {})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="branchpy-telemetry-bridge",
                                     description="stdio JSON bridge between the VS Code extension and "
                                                 "the telemetry daemon (one JSON object per line).")
    parser.add_argument("--no-start", action="store_true", help="do not start a daemon when none runs")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="seconds per try of a daemon reply")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    options = parser.parse_args(argv)
    from .logging_setup import setup_logging

    setup_logging(options.log_level, stream=sys.stderr)
    bridge = Bridge(resolve_paths(), sys.stdout, start=not options.no_start, timeout=options.timeout)
    try:
        return bridge.run(sys.stdin)
    except (BrokenPipeError, KeyboardInterrupt):
        return 0


if __name__ == "__main__":
    sys.exit(main())
