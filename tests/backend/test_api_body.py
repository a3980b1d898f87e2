"""read_body: caps before and while reading, gzip inflated under the cap, short bodies."""

from __future__ import annotations

import gzip
import io
import tracemalloc

import pytest

from branchpy_telemetry.backend.body import read_body
from branchpy_telemetry.backend.errors import (
    BadEncodingError,
    BadRequestError,
    IncompleteBodyError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)

from .live_backend import gzip_bomb

CAP = 1024 * 1024


class CountingStream(io.BytesIO):
    """A wsgi.input that records how much the reader pulled from it."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.pulled = 0

    def read(self, n: int = -1) -> bytes:
        chunk = super().read(n)
        self.pulled += len(chunk)
        return chunk


def environ(body: bytes, *, length: int | None | str = "auto", encoding: str | None = None) -> dict:
    env = {"wsgi.input": CountingStream(body)}
    if length == "auto":
        env["CONTENT_LENGTH"] = str(len(body))
    elif length is not None:
        env["CONTENT_LENGTH"] = str(length)
    if encoding:
        env["HTTP_CONTENT_ENCODING"] = encoding
    return env


def test_read_body_returns_the_exact_bytes():
    assert read_body(environ(b'{"a": "\xc3\xa9"}'), CAP) == b'{"a": "\xc3\xa9"}'


def test_content_length_over_the_cap_is_refused_before_reading_a_byte():
    env = environ(b"x" * 10, length=CAP + 1)
    with pytest.raises(PayloadTooLargeError) as info:
        read_body(env, CAP)
    assert env["wsgi.input"].pulled == 0
    assert info.value.details == {"max_upload_bytes": CAP}


def test_body_without_length_is_cut_off_at_the_cap_while_reading():
    env = environ(b"x" * (3 * CAP), length=None)
    with pytest.raises(PayloadTooLargeError):
        read_body(env, CAP)
    assert env["wsgi.input"].pulled <= CAP + 64 * 1024


def test_body_shorter_than_its_content_length_is_incomplete():
    with pytest.raises(IncompleteBodyError) as info:
        read_body(environ(b'{"package_id": "x"', length=5000), CAP)
    assert info.value.status == 400 and info.value.code == "incomplete_body"


def test_invalid_content_length_is_a_bad_request():
    with pytest.raises(BadRequestError):
        read_body(environ(b"{}", length="12abc"), CAP)
    with pytest.raises(BadRequestError):
        read_body(environ(b"{}", length=-3), CAP)


def test_gzip_body_is_inflated():
    data = b'{"k": "v"}' * 1000
    assert read_body(environ(gzip.compress(data), encoding="gzip"), CAP) == data


def test_gzip_multi_member_body_is_inflated_whole():
    assert read_body(environ(gzip.compress(b"ab") + gzip.compress(b"cd"), encoding="x-gzip"), CAP) == b"abcd"


def test_gzip_exactly_at_the_cap_passes_and_one_byte_over_is_refused():
    assert len(read_body(environ(gzip.compress(b"0" * CAP), encoding="gzip"), CAP)) == CAP
    with pytest.raises(PayloadTooLargeError):
        read_body(environ(gzip.compress(b"0" * (CAP + 1)), encoding="gzip"), CAP)


def test_gzip_bomb_of_one_gigabyte_is_refused_without_inflating_it():
    bomb = gzip_bomb(1024)  # 1 GiB of zeros in about 1 MB of gzip
    assert len(bomb) < 2 * 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLargeError):
            read_body(environ(bomb, encoding="gzip"), 5 * CAP)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 * CAP, f"peak {peak} bytes while refusing a bomb"


def test_corrupt_gzip_is_a_bad_encoding():
    with pytest.raises(BadEncodingError):
        read_body(environ(b"\x1f\x8b\x08\x00garbage-not-deflate", encoding="gzip"), CAP)


def test_truncated_gzip_is_a_bad_encoding():
    data = gzip.compress(b"x" * 10000)
    with pytest.raises(BadEncodingError):
        read_body(environ(data[: len(data) // 2], encoding="gzip"), CAP)


def test_unknown_content_encoding_is_unsupported():
    with pytest.raises(UnsupportedMediaTypeError):
        read_body(environ(b"{}", encoding="br"), CAP)
