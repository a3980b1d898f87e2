"""`POST /api/telemetry/upload` (DESIGN §10).

auth (ingest) -> rate limit -> content type -> capped body read (gzip aware)
-> JSON decode (400) -> schema (422 `schema_invalid`, msgspec `$.path`) ->
privacy rules (422 `privacy_violation`, pointers + rule names, never the
value) -> sink.store_package (201, or 200 `duplicate` for a known package;
503 when the sink is down, nothing half-written).
"""

from __future__ import annotations

import hashlib
import re
import time

import msgspec
import structlog
from flask import Blueprint, request

from branchpy_telemetry.client.schema import TelemetryPackage
from branchpy_telemetry.client.timewindow import utcnow

from ..body import read_body
from ..context import current_context, respond
from ..errors import BadJsonError, PrivacyViolationError, SchemaInvalidError, UnsupportedMediaTypeError
from ..privacy_gate import find_package_violations

bp = Blueprint("upload", __name__)
log = structlog.get_logger("backend.upload")

MAX_REPORTED_VIOLATIONS = 100
_PATH = re.compile(r" - at `(\$[^`]*)`$")
_QUOTED = re.compile(r"'[^']*'")


class UploadReceipt(msgspec.Struct, kw_only=True):
    package_id: str
    accepted_events: int
    duplicate_events: int
    receipt: str  # "sha256:" + hex of the exact (decompressed) body bytes
    duplicate: bool


@bp.post("/upload")
def upload():
    ctx = current_context()
    ctx.authorize("ingest", ctx.upload_limiter)
    check_content_type(request.mimetype, request.mimetype_params)
    clock = PhaseClock()
    body = read_body(request.environ, ctx.settings.max_upload_bytes)
    receipt = "sha256:" + hashlib.sha256(body).hexdigest()
    clock.lap("read")
    raw = decode_json(body)
    clock.lap("decode")
    check_privacy(raw)  # before the schema: a schema message must never echo a private value
    clock.lap("privacy")
    package = validate_package(raw)
    clock.lap("schema")
    result = ctx.sink.store_package(package, receipt=receipt, body_bytes=len(body), received_at=utcnow())
    clock.lap("store")
    log.info("upload.stored", package_id=result.package_id, accepted=result.accepted_events,
             duplicates=result.duplicate_events, duplicate=result.duplicate, bytes=len(body),
             phases_ms=clock.laps)
    answer = UploadReceipt(package_id=result.package_id, accepted_events=result.accepted_events,
                           duplicate_events=result.duplicate_events, receipt=receipt,
                           duplicate=result.duplicate)
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
            f"Content-Type must be application/json, not {mimetype or 'missing'!r}",
            hint="send the package as JSON: Content-Type: application/json")
    charset = params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaTypeError(f"charset must be utf-8, not {charset!r}")


def decode_json(body: bytes) -> object:
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise BadJsonError(f"the body is not valid JSON: {exc}",
                           hint="the package must be one UTF-8 JSON object") from None


def validate_package(raw: object) -> TelemetryPackage:
    try:
        return msgspec.convert(raw, TelemetryPackage)
    except msgspec.ValidationError as exc:
        text = _QUOTED.sub("'…'", str(exc))  # msgspec quotes bad enum values: never echo them
        match = _PATH.search(text)
        raise SchemaInvalidError(f"the package does not match schema 1.0.0: {text}",
                                 details={"path": match.group(1) if match else "$"},
                                 hint="GET /api/telemetry/schema gives the JSON Schema") from None


def check_privacy(raw: object) -> None:
    findings = find_package_violations(raw)
    if findings:
        details = [{"pointer": f.pointer, "rule": f.rule} for f in findings[:MAX_REPORTED_VIOLATIONS]]
        log.warning("upload.privacy_rejected", violations=len(findings))
        raise PrivacyViolationError(
            f"the package breaks the privacy rules at {len(findings)} place(s); values are not echoed",
            details=details, hint="export it again with a current client, which sanitizes these")
