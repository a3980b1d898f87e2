"""`POST /api/telemetry/upload` (docs/http-api.md).

auth (ingest) and rate limit (`access.require_key`, before the view) -> content
type -> capped body read (gzip aware) -> JSON decode (400; nesting bounded)
-> privacy rules (422 `privacy_violation`, pointers + rule names, never the
value) -> schema (422 `schema_invalid`, or `privacy_violation` with rule
`fixed_format` when a field the system writes itself has another form; a
place, never a value or a key) -> size limits (422 `limit_exceeded`) -> the
catalog (what the server's catalog does not declare is dropped and counted in
`dropped`) -> sink.store_package (201, or 200 `duplicate` for a known
package; 503 when the sink is down, nothing half-written).

Fast path: the body is decoded once, straight into `TelemetryPackage` (schema
checked in C), and the privacy gate reads the body bytes
(`find_upload_violations`). Any body that does not decode that way takes the
path above step by step, so every error (and which one wins when a body
breaks several rules) is exactly what that path gives.
"""

from __future__ import annotations

import hashlib
import re
import time

import msgspec
import structlog
from flask import Blueprint, request

from branchpy_telemetry.backend.body import read_body
from branchpy_telemetry.backend.context import current_context, respond
from branchpy_telemetry.backend.errors import (
    PrivacyViolationError,
    SchemaInvalidError,
    UnsupportedMediaTypeError,
)
from branchpy_telemetry.backend.input_limits import check_package_limits, decode_json_bounded
from branchpy_telemetry.backend.privacy_gate import find_package_violations, find_upload_violations
from branchpy_telemetry.client.contracts.declared import filter_package
from branchpy_telemetry.client.contracts.schema import TelemetryPackage, package_decoder
from branchpy_telemetry.client.contracts.timewindow import utcnow
from branchpy_telemetry.client.infra.gc_pause import gc_paused

bp = Blueprint("upload", __name__)
log = structlog.get_logger("backend.upload")

MAX_REPORTED_VIOLATIONS = 100
_PATH = re.compile(r" - at `(\$[^`]*)`$")


class UploadReceipt(msgspec.Struct, kw_only=True):
    package_id: str
    accepted_events: int
    duplicate_events: int
    receipt: str  # "sha256:" + hex of the exact (decompressed) body bytes
    duplicate: bool
    dropped: dict[str, int] = {}  # what this server's catalog does not declare: reason -> count


@bp.post("/upload")
def upload():
    ctx = current_context()
    check_content_type(request.mimetype, request.mimetype_params)
    clock = PhaseClock()
    body = read_body(request.environ, ctx.settings.max_upload_bytes)
    receipt = "sha256:" + hashlib.sha256(body).hexdigest()
    clock.lap("read")
    with gc_paused():
        package = decode_package_checked(body, clock)
        check_package_limits(package)
        now = utcnow()
        package, dropped = filter_package(package, ctx.catalog, now.date())
        clock.lap("catalog")
        result = ctx.sink.store_package(package, receipt=receipt, body_bytes=len(body), received_at=now)
        clock.lap("store")
    log.info("upload.stored", package_id=result.package_id, accepted=result.accepted_events,
             duplicates=result.duplicate_events, duplicate=result.duplicate, bytes=len(body),
             dropped=sum(dropped.values()), phases_ms=clock.laps)
    answer = UploadReceipt(package_id=result.package_id, accepted_events=result.accepted_events,
                           duplicate_events=result.duplicate_events, receipt=receipt,
                           duplicate=result.duplicate, dropped=dropped)
    return respond(answer, 200 if result.duplicate else 201)


class PhaseClock:
    """Milliseconds per upload phase, logged with `upload.stored` (where the time goes)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round((now - self._last) * 1000, 2)
        self._last = now


def check_content_type(mimetype: str, params: dict[str, str]) -> None:
    if mimetype != "application/json":
        raise UnsupportedMediaTypeError(
            "Content-Type must be application/json",
            hint="send the package as JSON: Content-Type: application/json")
    charset = params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaTypeError("charset must be utf-8")


def decode_package_checked(body: bytes, clock: PhaseClock) -> TelemetryPackage:
    """The body as a package that passed the schema and the privacy rules, or the error."""
    try:
        package = package_decoder.decode(body)
    except msgspec.DecodeError:  # bad JSON or schema: the step-by-step path names the error
        package = None
    clock.lap("decode")
    if package is None:
        raw = decode_json(body)
        check_privacy(raw)  # before the schema: a schema message must never echo a private value
        clock.lap("privacy")
        package = validate_package(raw)
        clock.lap("schema")
        return package
    report_violations(find_upload_violations(body, package))
    clock.lap("privacy")
    return package


def decode_json(body: bytes) -> object:
    return decode_json_bounded(body)


def validate_package(raw: object) -> TelemetryPackage:
    try:
        return msgspec.convert(raw, TelemetryPackage)
    except msgspec.ValidationError as exc:
        problem, path = describe_schema_error(str(exc))
        if problem == FIXED_FORMAT:
            raise PrivacyViolationError(
                "a field the system writes itself does not have its fixed form; values are not echoed",
                details=[{"pointer": json_pointer(path), "rule": FIXED_FORMAT}],
                hint="export it again with a current client") from None
        raise SchemaInvalidError(f"the package does not match schema 1.0.0: {problem} at {path}",
                                 details={"path": path},
                                 hint="GET /api/telemetry/schema gives the JSON Schema") from None


FIXED_FORMAT = "fixed_format"
_SAFE_MESSAGES = (  # msgspec's messages that quote only our own schema (types, field names)
    re.compile(r"Expected `[a-z| ]+`(?:, got `[a-z]+`)?"),
    re.compile(r"Object missing required field `[a-z_]+`"),
    re.compile(r"Expected (?:array|object) of length [<>=]+ ?\d+"),
    re.compile(r"Expected `(?:int|float)` >?<?=? ?-?[\d.e+]+"),
    re.compile(r"Expected `(?:str|array|object)` of length [<>=]+ ?\d+"),
)


def describe_schema_error(text: str) -> tuple[str, str]:
    """(what is wrong, where as `$.path`) from a msgspec message, never repeating what was sent:
    an unknown field's name, an enum value and a string that missed its pattern are all left out
    (msgspec shows a mapping's keys as `[...]` in paths already)."""
    match = _PATH.search(text)
    path = match.group(1) if match else "$"
    head = text[:match.start()] if match else text
    if head.startswith("Expected `str` matching regex"):
        return FIXED_FORMAT, path
    if head.startswith("Object contains unknown field"):
        return "an unknown field (fields are fixed by the schema)", path
    if head.startswith("Invalid enum value"):
        return "a value that is not one of the allowed values", path
    if any(pattern.fullmatch(head) for pattern in _SAFE_MESSAGES):
        return head, path
    return "a value of the wrong type or form", path


def json_pointer(path: str) -> str:
    """`$.summary.events[3].event_id` -> `/summary/events/3/event_id` (a `[...]` key ends the pointer)."""
    tokens: list[str] = []
    for token in re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+|\.\.\.)\]", path):
        name, index = token
        if index == "...":
            break
        tokens.append(name or index)
    return "/" + "/".join(tokens) if tokens else ""


def check_privacy(raw: object) -> None:
    report_violations(find_package_violations(raw))


def report_violations(findings: list) -> None:
    if findings:
        details = [{"pointer": f.pointer, "rule": f.rule} for f in findings[:MAX_REPORTED_VIOLATIONS]]
        log.warning("upload.privacy_rejected", violations=len(findings))
        raise PrivacyViolationError(
            f"the package breaks the privacy rules at {len(findings)} place(s); values are not echoed",
            details=details, hint="export it again with a current client, which sanitizes these")
