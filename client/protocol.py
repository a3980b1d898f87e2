"""The control protocol (DESIGN §9): JSON over ZeroMQ, ROUTER on the daemon.

Request  {"v":1, "id":"<uuid>", "cmd":"status", "args":{…}}
Reply    {"v":1, "id":"<same>", "ok":true, "result":{…}}
      or {"v":1, "id":"<same>", "ok":false, "error":{"code":"…","message":"…"}}
Progress (PUB beside the control socket): one frame, topic prefix
`progress ` then {"id": "<request id>", "cmd", "stage", "done", "total"}.
"""

from __future__ import annotations

from typing import Any

import msgspec

PROTOCOL_VERSION = 1
PROGRESS_TOPIC = b"progress "


class Request(msgspec.Struct, kw_only=True):
    v: int = PROTOCOL_VERSION
    id: str
    cmd: str
    args: dict[str, Any] = {}


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


def ok_reply(request_id: str | None, result: Any) -> Reply:
    return Reply(v=PROTOCOL_VERSION, id=request_id, ok=True, result=result)


def error_reply(request_id: str | None, code: str, message: str, *, hint: str | None = None,
                details: Any = None) -> Reply:
    body = ErrorBody(code=code, message=message, hint=hint, details=details)
    return Reply(v=PROTOCOL_VERSION, id=request_id, ok=False, error=body)
