"""Reading a request body with hard caps (`POST /upload` in docs/http-api.md).

- `Content-Length` over the cap -> 413 before a byte of the body is read.
- Bodies are read in chunks and counted, so a body longer than it said, or a
  chunked one, is cut off at the cap (413) rather than buffered.
- `Content-Encoding: gzip` is inflated incrementally with `max_length`, so the
  decompressed output never exceeds cap + 1 bytes: a zip bomb costs at most
  the cap in memory and gets 413 as soon as it crosses it.
- A body that ends before its `Content-Length` -> 400 `incomplete_body`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping

from branchpy_telemetry.backend.errors import (
    BadEncodingError,
    BadRequestError,
    IncompleteBodyError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)

CHUNK_BYTES = 64 * 1024
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header + trailer required


def read_body(environ: Mapping, max_bytes: int) -> bytes:
    """The (decompressed) body of a WSGI request, at most `max_bytes` long."""
    encoding = content_encoding(environ)
    length = content_length(environ)
    if length is not None and length > max_bytes:
        raise _too_large(max_bytes, f"Content-Length {length} exceeds")
    chunks = _read_raw(environ["wsgi.input"], length, max_bytes)
    if encoding == "gzip":
        return _gunzip(chunks, max_bytes)
    return b"".join(chunks)


def content_encoding(environ: Mapping) -> str | None:
    value = (environ.get("HTTP_CONTENT_ENCODING") or "").strip().lower()
    if value in ("", "identity"):
        return None
    if value in ("gzip", "x-gzip"):
        return "gzip"
    raise UnsupportedMediaTypeError(
        "unsupported Content-Encoding", hint="send the body plain or with Content-Encoding: gzip")


def content_length(environ: Mapping) -> int | None:
    raw = environ.get("CONTENT_LENGTH")
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequestError("invalid Content-Length") from None
    if value < 0:
        raise BadRequestError("invalid Content-Length")
    return value


def _too_large(max_bytes: int, what: str) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"{what} the upload cap of {max_bytes} bytes",
        details={"max_upload_bytes": max_bytes},
        hint="split the window into several packages (the client does this by itself)",
    )


def _read_raw(stream, length: int | None, max_bytes: int) -> Iterator[bytes]:
    """Chunks of the raw body: exactly `length` bytes, or up to EOF when unknown."""
    remaining = length
    total = 0
    while remaining is None or remaining > 0:
        want = CHUNK_BYTES if remaining is None else min(CHUNK_BYTES, remaining)
        chunk = stream.read(want)
        if not chunk:
            if remaining is not None:
                raise IncompleteBodyError(
                    f"the body ended after {total} of {length} bytes",
                    hint="the connection was cut; send the package again")
            return
        total += len(chunk)
        if total > max_bytes:
            raise _too_large(max_bytes, "the body exceeds")
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk


def _gunzip(chunks: Iterator[bytes], max_bytes: int) -> bytes:
    out = bytearray()
    inflater = zlib.decompressobj(_GZIP_WBITS)
    try:
        for chunk in chunks:
            data = chunk
            while data:
                out += inflater.decompress(data, max_bytes + 1 - len(out))
                if len(out) > max_bytes:
                    raise _too_large(max_bytes, "the decompressed body exceeds")
                data = inflater.unconsumed_tail
                if inflater.eof:
                    data = inflater.unused_data  # a next gzip member (RFC 1952 allows several)
                    if data:
                        inflater = zlib.decompressobj(_GZIP_WBITS)
    except zlib.error as exc:
        raise BadEncodingError(f"the gzip body is corrupt: {exc}") from None
    if not inflater.eof:
        raise BadEncodingError("the gzip body is truncated")
    return bytes(out)
