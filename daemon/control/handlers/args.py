"""Decode a request's `args` into a handler's own msgspec Struct.

Each handler declares `class Args(msgspec.Struct, forbid_unknown_fields=True)`;
`parse_args` turns a wrong type or an unknown name into a `bad_arguments`
error that names the argument (never a traceback).
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from branchpy_telemetry.client.contracts.errors import UsageError

T = TypeVar("T")


class NoArgs(msgspec.Struct, forbid_unknown_fields=True):
    pass


def parse_args(args: dict[str, Any], spec: type[T]) -> T:
    try:
        return msgspec.convert(args, spec)
    except msgspec.ValidationError as exc:
        raise UsageError(f"bad arguments: {_describe(exc)}") from None


def _describe(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    match = re.match(r"Object contains unknown field `([^`]+)`", text)
    if match:
        return f"unknown argument {match.group(1)!r}"
    match = re.match(r"Object missing required field `([^`]+)`", text)
    if match:
        return f"missing argument {match.group(1)!r}"
    match = re.match(r"(.*) - at `\$\.([^`]*)`", text)
    if match:
        return f"argument {match.group(2)!r}: {match.group(1)}"
    return text
