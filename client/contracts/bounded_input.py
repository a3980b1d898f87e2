"""Parse untrusted JSON input within the limits of `limits.py`.

`decode_json` refuses a message past its byte limit (`too_large`, before
decoding) and one nested deeper than `MAX_JSON_DEPTH` (`malformed_request`):
JSON decoders recurse, and a few KB of `[[[[…` used to escape as a
RecursionError and end the process. `read_lines` reads newline-delimited
input with a bounded buffer: a line past the limit is discarded while it is
read and handed over as its first `max_bytes + 1` bytes, so the caller can
answer `too_large` without ever holding the line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import msgspec

from branchpy_telemetry.client.contracts.errors import MalformedRequestError, TooLargeError
from branchpy_telemetry.client.contracts.limits import MAX_JSON_DEPTH

_DISCARD_CHUNK = 64 * 1024


def decode_json(data: bytes, *, max_bytes: int, max_depth: int = MAX_JSON_DEPTH,
                what: str = "request") -> Any:
    """The decoded JSON value of `data`, or TooLargeError / MalformedRequestError."""
    if len(data) > max_bytes:
        raise too_large(what, len(data), max_bytes)
    try:
        value = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise MalformedRequestError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise too_deep(what, max_depth) from None
    if nesting_exceeds(value, max_depth):
        raise too_deep(what, max_depth)
    return value


def too_large(what: str, size: int, limit: int) -> TooLargeError:
    return TooLargeError(f"{what} is {size:,} bytes; the limit is {limit:,}",
                         hint="send less data in one message",
                         details={"limit_bytes": limit, "size_bytes": size})


def too_deep(what: str, limit: int) -> MalformedRequestError:
    return MalformedRequestError(f"{what} nests arrays/objects deeper than {limit} levels",
                                 details={"limit_depth": limit})


def nesting_exceeds(value: Any, limit: int) -> bool:
    """True when arrays/objects nest deeper than `limit` (a bare scalar is depth 0).

    Iterative, so it never recurses itself; it only runs on what the decoder
    accepted, which its own recursion guard already bounds.
    """
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if type(node) is dict else node if type(node) is list else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if type(child) in (dict, list))
    return False


# `{"id": <string or integer>` at the very start: the id of a line too large to
# decode, when it comes first, so the answer can still name the request.
_LEADING_ID = re.compile(rb'\s*\{\s*"id"\s*:\s*("(?:[^"\\\x00-\x1f]|\\.){0,200}"|-?\d{1,18})\s*[,}]')


def leading_id(prefix: bytes) -> Any:
    """The message id if the raw bytes start with it, else None (never decodes the rest)."""
    match = _LEADING_ID.match(prefix[:512])
    if match is None:
        return None
    try:
        return msgspec.json.decode(match.group(1))
    except msgspec.DecodeError:
        return None


def read_lines(stream: BinaryIO, max_bytes: int) -> Iterator[bytes]:
    """Lines of `stream` without their newline. A line longer than `max_bytes`
    is yielded as its first `max_bytes + 1` bytes; the rest of it is read and
    dropped in small chunks up to its newline."""
    while True:
        line = stream.readline(max_bytes + 1)
        if not line:
            return
        if line.endswith(b"\n"):
            yield line[:-1]
            continue
        if len(line) <= max_bytes:  # last line, no newline
            yield line
            return
        while True:  # over-long: drop the rest of it
            rest = stream.readline(_DISCARD_CHUNK)
            if not rest or rest.endswith(b"\n"):
                break
        yield line
