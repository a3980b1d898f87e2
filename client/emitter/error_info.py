"""`ErrorInfo` from what callers of `emit()`/`track()` pass as `error`: an
ErrorInfo, a dict with code/type/message, or an exception (its type name,
its `code` attribute if any, and its message). Bad input is a UsageError;
the raw message stays local (the exporter hashes it)."""

from __future__ import annotations

from typing import Any

from branchpy_telemetry.client.contracts.errors import UsageError
from branchpy_telemetry.client.contracts.event import ErrorInfo

MAX_MESSAGE_CHARS = 4096
_ERROR_KEYS = frozenset({"code", "type", "message"})


def to_error_info(error: Any) -> ErrorInfo:
    """An ErrorInfo from an ErrorInfo, a dict with code/type/message, or an exception."""
    if isinstance(error, ErrorInfo):
        return error
    if isinstance(error, BaseException):
        return ErrorInfo(code=_text_or_none(getattr(error, "code", None)),
                         type=type(error).__name__, message=_exception_message(error))
    if isinstance(error, dict):
        extra = set(error) - _ERROR_KEYS
        if extra:
            raise UsageError(f"invalid error field(s): {', '.join(sorted(map(str, extra)))}",
                             hint="error keys: code, type, message")
        values = {k: _text_or_none(v) for k, v in error.items()}
        if values.get("message"):
            values["message"] = values["message"][:MAX_MESSAGE_CHARS]
        return ErrorInfo(**values)
    raise UsageError(f"invalid error {error!r}: expected a dict, an ErrorInfo or an exception")


def _text_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    raise UsageError(f"invalid error value {value!r}: expected a string")


def _exception_message(exc: BaseException) -> str | None:
    try:
        return str(exc)[:MAX_MESSAGE_CHARS] or None
    except Exception:
        return None  # a broken __str__ must not break track()
