"""Bounded parsing of untrusted JSON (client/contracts/bounded_input.py)."""

from __future__ import annotations

import io

import pytest

from branchpy_telemetry.client.contracts.bounded_input import (
    decode_json,
    leading_id,
    nesting_exceeds,
    read_lines,
)
from branchpy_telemetry.client.contracts.errors import MalformedRequestError, TooLargeError


@pytest.mark.parametrize("value,depth", [
    (1, 0), ([], 1), ({}, 1), ([[1]], 2), ({"a": [{"b": 1}]}, 3), ([1, [2, [3, [4]]], 5], 4),
])
def test_nesting_is_measured_exactly(value, depth):
    assert not nesting_exceeds(value, depth)
    assert depth == 0 or nesting_exceeds(value, depth - 1)


def test_decode_refuses_depth_past_the_limit_and_any_depth_the_decoder_cannot_reach():
    assert decode_json(b"[[[]]]", max_bytes=100, max_depth=3) == [[[]]]
    with pytest.raises(MalformedRequestError, match="deeper than 2 levels"):
        decode_json(b"[[[]]]", max_bytes=100, max_depth=2)
    with pytest.raises(MalformedRequestError, match="deeper than 32 levels"):
        decode_json(b"[" * 200_000 + b"]" * 200_000, max_bytes=1 << 20)


def test_decode_refuses_size_before_decoding():
    with pytest.raises(TooLargeError) as caught:
        decode_json(b'"' + b"x" * 100 + b'"', max_bytes=50, what="the frame")
    assert caught.value.details == {"limit_bytes": 50, "size_bytes": 102}
    assert caught.value.message == "the frame is 102 bytes; the limit is 50"


@pytest.mark.parametrize("data", [b"\xff\xfe", b'{"a": "\xc3"}', b"", b"{", b"nan"])
def test_invalid_json_and_invalid_utf8_are_malformed(data):
    with pytest.raises(MalformedRequestError):
        decode_json(data, max_bytes=100)


def test_read_lines_hands_over_an_overlong_line_as_its_first_limit_plus_one_bytes():
    stream = io.BytesIO(b"short\n" + b"L" * 50 + b"\n" + b"exact-10!!\n" + b"no-newline")
    assert list(read_lines(stream, 10)) == [b"short", b"L" * 11, b"exact-10!!", b"no-newline"]


def test_read_lines_drops_an_overlong_last_line_without_newline():
    assert list(read_lines(io.BytesIO(b"ok\n" + b"x" * 1000), 10)) == [b"ok", b"x" * 11]


@pytest.mark.parametrize("prefix,expected", [
    (b'{"id": 7, "type": "x", "payload": {"a": "', 7),
    (b'  {"id":"abc-1","payload":', "abc-1"),
    (b'{"id": "q\\"uote", "type": 1}', 'q"uote'),
    (b'{"type": "x", "id": 7}', None),
    (b'[{"id": 7}]', None),
    (b'{"id": {"nested": 1}}', None),
])
def test_leading_id_reads_only_an_id_that_comes_first(prefix, expected):
    assert leading_id(prefix) == expected
