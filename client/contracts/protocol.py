"""The control protocol (docs/control-protocol.md): JSON over ZeroMQ, ROUTER on the daemon.

Request  {"v":1, "id":"<uuid>", "cmd":"status", "args":{…}}
Reply    {"v":1, "id":"<same>", "ok":true, "result":{…}}
      or {"v":1, "id":"<same>", "ok":false, "error":{"code":"…","message":"…"}}
Progress (PUB beside the control socket): one frame, topic prefix
`progress ` then {"id": "<request id>", "cmd", "stage", "done", "total"}.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from branchpy_telemetry.client.contracts.bounded_input import (
    decode_json,
    leading_id,
    nesting_exceeds,
    too_deep,
    too_large,
)
from branchpy_telemetry.client.contracts.errors import MalformedRequestError, TelemetryError
from branchpy_telemetry.client.contracts.limits import MAX_CONTROL_MESSAGE_BYTES, MAX_JSON_DEPTH

PROTOCOL_VERSION = 1
PROGRESS_TOPIC = b"progress "


NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]


class Request(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One control request; `args: null` is taken as no arguments."""

    v: int = PROTOCOL_VERSION
    id: NonEmptyStr
    cmd: NonEmptyStr
    args: dict[str, Any] | None = {}


class ErrorBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Why a request failed: a stable `code`, a `message` for people, a `hint` on what to do."""

    code: str
    message: str
    hint: str | None = None
    details: Any = None


class Reply(msgspec.Struct, kw_only=True, omit_defaults=True):
    v: int  # no default, so omit_defaults never drops it: replies always carry "v"
    id: str | None
    ok: bool
    result: Any = None
    error: ErrorBody | None = None


class ProgressUpdate(msgspec.Struct, kw_only=True, omit_defaults=True):
    """How far a long request is: `done` of `total` (absent: not known yet) in `stage`."""

    cmd: str
    stage: str
    done: int = 0
    total: int | None = None
    message: str | None = None


class Progress(ProgressUpdate, kw_only=True, omit_defaults=True):
    id: str  # the request it belongs to


request_decoder = msgspec.json.Decoder(Request)
reply_decoder = msgspec.json.Decoder(Reply)
progress_decoder = msgspec.json.Decoder(Progress)
encoder = msgspec.json.Encoder()


def decode_request(data: bytes) -> Request:
    """One request frame as a Request, within the size and nesting limits of client/contracts/limits.py.

    Raises TooLargeError or MalformedRequestError; when the request's id could
    be read, the error's `details` carry it (`{"id": …}`) so that the reply can
    echo it. Arguments come back as a dict, never None.
    """
    if len(data) > MAX_CONTROL_MESSAGE_BYTES:
        raise too_large("request", len(data), MAX_CONTROL_MESSAGE_BYTES)
    try:
        request = request_decoder.decode(data)
    except RecursionError:
        raise _with_id(too_deep("request", MAX_JSON_DEPTH), _leading_request_id(data)) from None
    except msgspec.ValidationError as exc:
        raise _with_id(MalformedRequestError(f"malformed request: {exc}"), _readable_id(data)) from None
    except msgspec.DecodeError as exc:
        raise MalformedRequestError(f"request is not valid JSON: {exc}") from None
    # the request object is level 1 and its args level 2: they may nest MAX_JSON_DEPTH - 1 deep
    if request.args is None:
        request.args = {}
    elif nesting_exceeds(request.args, MAX_JSON_DEPTH - 1):
        raise _with_id(too_deep("request", MAX_JSON_DEPTH), request.id)
    if request.v != PROTOCOL_VERSION:
        message = f"unsupported protocol version {request.v!r}; this daemon speaks v{PROTOCOL_VERSION}"
        raise _with_id(MalformedRequestError(message), request.id)
    return request


def _readable_id(data: bytes) -> str | None:
    """The id of a request that is JSON but not a valid Request, when it has a usable one."""
    try:
        obj = decode_json(data, max_bytes=MAX_CONTROL_MESSAGE_BYTES)
    except TelemetryError:
        return _leading_request_id(data)
    request_id = obj.get("id") if isinstance(obj, dict) else None
    return request_id if isinstance(request_id, str) and request_id else None


def _leading_request_id(data: bytes) -> str | None:
    request_id = leading_id(data)
    return request_id if isinstance(request_id, str) and request_id else None


def _with_id(exc: TelemetryError, request_id: str | None) -> TelemetryError:
    """`exc` with the request id in its details (merged with what they hold), for the reply to echo."""
    if request_id:
        exc.details = {**(exc.details if isinstance(exc.details, dict) else {}), "id": request_id}
    return exc


def ok_reply(request_id: str | None, result: Any) -> Reply:
    return Reply(v=PROTOCOL_VERSION, id=request_id, ok=True, result=result)


def error_reply(request_id: str | None, code: str, message: str, *, hint: str | None = None,
                details: Any = None) -> Reply:
    body = ErrorBody(code=code, message=message, hint=hint, details=details)
    return Reply(v=PROTOCOL_VERSION, id=request_id, ok=False, error=body)
