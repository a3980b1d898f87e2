"""Malformed messages for the control socket and the bridge, reproducible from a seed.

Kinds: random bytes (mostly invalid UTF-8), valid messages cut short,
arrays/objects nested past the limit (closed and unclosed, up to 100,000
deep), invalid UTF-8 and lone surrogates inside strings, numbers no decoder
can hold, wrong types for every field, unknown fields and commands, and
(rarely, they are large) messages past the byte limit. None is a valid
request: each must be answered with an error, never crash the process.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator

from branchpy_telemetry.client.contracts.limits import MAX_JSON_DEPTH


def _random_bytes(rng: random.Random, _: dict) -> bytes:
    return rng.randbytes(rng.randint(1, 300))


def _cut_short(rng: random.Random, valid: dict) -> bytes:
    data = json.dumps(valid).encode()
    return data[:rng.randint(1, len(data) - 1)]


def _too_deep(rng: random.Random, valid: dict) -> bytes:
    depth = rng.choice([MAX_JSON_DEPTH + 1, rng.randint(MAX_JSON_DEPTH + 1, 5_000), 100_000])
    opener, closer = (b"[", b"]") if rng.random() < 0.5 else (b'{"k":', b"}")
    inner = opener * depth + (b"1" if opener != b"[" else b"") + closer * depth
    if rng.random() < 0.3:
        inner = opener * depth  # never closed
    head = json.dumps(valid).encode()[:-1]
    return head + b', "payload": ' + inner + b"}" if rng.random() < 0.5 else inner


def _bad_text(rng: random.Random, valid: dict) -> bytes:
    junk = rng.choice([b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\\ud800", b"\\udfff\\ud800", b"\x00"])
    return json.dumps(valid).encode().replace(b'status"', b"sta" + junk + b'tus"', 1)


def _bad_number(rng: random.Random, valid: dict) -> bytes:
    number = rng.choice([b"1" * 5000, b"1e999999", b"-" + b"9" * 5000, b"NaN", b"Infinity", b"0x10", b"01"])
    return json.dumps(valid).encode()[:-1] + b', "n": ' + number + b"}"


def _wrong_types(rng: random.Random, valid: dict) -> bytes:
    """A field other than the id (any id is valid on the bridge) of a type or value it cannot have."""
    message = dict(valid)
    field = rng.choice(sorted(set(message) - {"id"}))
    message[field] = rng.choice([7, 1.5, [], [1, "x"], {"a": {}}, "", "x" * 500])
    if rng.random() < 0.3:
        message[rng.choice(["extra", "ID", "\u0000", "payload2"])] = 1
    return json.dumps(message).encode()


def _not_an_object(rng: random.Random, _: dict) -> bytes:
    return rng.choice([b"[]", b"null", b"true", b"42", b'"status"', b"", b" ", b"[{}]", b"{}", b"{}{}"])


KINDS: list[Callable[[random.Random, dict], bytes]] = [
    _random_bytes, _cut_short, _too_deep, _bad_text, _bad_number, _wrong_types, _not_an_object,
]


def malformed(seed: int, count: int, valid: dict, *, oversized_every: int = 0, oversize: int = 0
              ) -> Iterator[bytes]:
    """`count` malformed messages shaped after `valid`; every `oversized_every`-th is `oversize` bytes."""
    rng = random.Random(seed)
    for n in range(1, count + 1):
        if oversized_every and n % oversized_every == 0:
            yield b'{"id": "big", "payload": "' + b"x" * oversize + b'"}'
            continue
        yield rng.choice(KINDS)(rng, valid)
