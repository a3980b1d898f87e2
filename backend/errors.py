"""One exception base for the backend, with stable codes (docs/http-api.md).

Every failure the API gives — ours, werkzeug's 404/405, an unexpected 500 —
leaves as the same JSON envelope `{"error": {"code", "message", "details"?}}`.
No HTML pages, no tracebacks on the wire; the traceback goes to the log.
"""

from __future__ import annotations

import msgspec
import structlog
from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from branchpy_telemetry.backend.sinks.base import InvalidPackageError, SinkBusyError, SinkError

log = structlog.get_logger("backend.errors")

_encoder = msgspec.json.Encoder()


class ApiError(Exception):
    """Base of every error an API caller may see."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, details: object = None, hint: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        self.hint = hint
        self.headers = headers or {}

    def to_body(self) -> dict:
        body: dict = {"code": self.code, "message": self.message}
        if self.hint:
            body["hint"] = self.hint
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


class BadRequestError(ApiError):
    status = 400
    code = "bad_request"


class BadJsonError(BadRequestError):
    code = "bad_json"


class BadParameterError(BadRequestError):
    code = "bad_parameter"

    def __init__(self, parameter: str, message: str, *, hint: str | None = None):
        super().__init__(f"invalid parameter {parameter!r}: {message}",
                         details={"parameter": parameter}, hint=hint)


class JsonTooDeepError(BadRequestError):
    code = "json_too_deep"


class IncompleteBodyError(BadRequestError):
    code = "incomplete_body"


class BadEncodingError(BadRequestError):
    code = "bad_encoding"


class UnauthorizedError(ApiError):
    status = 401
    code = "unauthorized"


class ForbiddenError(ApiError):
    status = 403
    code = "forbidden"


class NotFoundError(ApiError):
    status = 404
    code = "not_found"


class MethodNotAllowedError(ApiError):
    status = 405
    code = "method_not_allowed"


class RequestTimeoutError(ApiError):
    status = 408
    code = "request_timeout"


class LengthRequiredError(ApiError):
    status = 411
    code = "length_required"


class PayloadTooLargeError(ApiError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaTypeError(ApiError):
    status = 415
    code = "unsupported_media_type"


class SchemaInvalidError(ApiError):
    status = 422
    code = "schema_invalid"


class PrivacyViolationError(ApiError):
    status = 422
    code = "privacy_violation"


class LimitExceededError(ApiError):
    status = 422
    code = "limit_exceeded"


class RateLimitedError(ApiError):
    status = 429
    code = "rate_limited"


class SinkUnavailableError(ApiError):
    status = 503
    code = "sink_unavailable"


# werkzeug's own HTTP errors (routing, method, size) -> our codes, by the class of each status.
HTTP_ERROR_CLASSES: tuple[type[ApiError], ...] = (
    BadRequestError, UnauthorizedError, ForbiddenError, NotFoundError, MethodNotAllowedError,
    RequestTimeoutError, LengthRequiredError, PayloadTooLargeError, UnsupportedMediaTypeError,
    RateLimitedError,
)
_HTTP_CODES: dict[int, str] = {cls.status: cls.code for cls in HTTP_ERROR_CLASSES}


def json_error(status: int, body: dict, headers: dict[str, str] | None = None) -> Response:
    response = Response(_encoder.encode(body), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_envelope_bytes(code: str, message: str) -> bytes:
    """The envelope for places outside Flask (the WSGI server's own errors)."""
    return _encoder.encode({"error": {"code": code, "message": message}})


def register_error_handlers(app: Flask) -> None:
    """One boundary: every exception becomes the JSON envelope."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return json_error(exc.status, exc.to_body(), exc.headers)

    @app.errorhandler(SinkError)
    def _sink_error(exc: SinkError):
        log.error("sink.unavailable", error=str(exc))
        return json_error(503, {"error": {"code": SinkUnavailableError.code,
                                          "message": "the storage backend is unavailable; retry later"}},
                          {"Retry-After": "5"})

    @app.errorhandler(SinkBusyError)
    def _sink_busy(exc: SinkBusyError):
        log.warning("sink.busy", error=str(exc))
        return json_error(503, {"error": {"code": exc.code,
                                          "message": "the storage backend is busy with concurrent writes; "
                                                     "nothing was stored, retry later"}},
                          {"Retry-After": str(exc.retry_after_s)})

    @app.errorhandler(InvalidPackageError)
    def _invalid_package(exc: InvalidPackageError):
        body: dict = {"code": exc.code, "message": exc.message}
        if exc.pointer:
            body["details"] = {"pointer": exc.pointer}
        return json_error(422, {"error": body})

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        headers = {}
        if status == 405 and getattr(exc, "valid_methods", None):
            headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        message = exc.description or exc.name
        return json_error(status, {"error": {"code": code, "message": str(message)}}, headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("http.unhandled_error", error_type=type(exc).__name__)
        return json_error(500, {"error": {"code": ApiError.code,
                                          "message": "the server failed to handle this request"}})
