"""Hostile upload bodies against a real server (`serve`, waitress, SQLite).

Threat: an unauthenticated or authenticated client sends bodies built to crash
the server, exhaust its memory or stack, or make it echo what it was sent.
Promise: every such body gets a 4xx in the JSON error envelope (never a 5xx,
never a traceback, never the submitted text back), the process stays up with
its memory roughly flat, and normal uploads keep working.
"""

from __future__ import annotations

import gzip
import os
import random
import uuid

import msgspec
import pytest
import requests

from branchpy_telemetry.client.contracts.limits import (
    MAX_ATTR_KEY_LENGTH,
    MAX_ATTRS_PER_EVENT,
    MAX_JSON_DEPTH,
)

from ..backend.conftest import make_event, make_package
from ..backend.live_backend import gzip_bomb, process_rss_bytes

JSON = {"Content-Type": "application/json"}
CANARY = "canary" + uuid.uuid4().hex[:12]  # must never come back in a response (lower case: not a key shape)
MB = 1024 * 1024
# A 3 MB body of `[],` decodes to a million lists (~100 MB while it is handled); freed memory stays
# in the allocator's arenas, so RSS climbs to a plateau over the first rounds and then stays there.
WARM_UP_ROUNDS = 8


def post(server, body: bytes, **headers: str) -> requests.Response:
    return requests.post(server.api + "/upload", data=body, timeout=30,
                         headers={**server.headers("ingest"), **JSON, **headers})


def assert_error(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code, error
    return error


def nested_arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def package_dict(n_events: int = 1, seed: int = 0) -> dict:
    return msgspec.to_builtins(make_package(n_events, seed=seed))


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_arrays_nested_deeper_than_the_stack_are_a_400_and_the_server_lives(server, depth):
    body = nested_arrays(depth)
    error = assert_error(post(server, body), 400, "json_too_deep")
    assert error["details"] == {"max_depth": MAX_JSON_DEPTH}
    assert requests.get(server.api + "/health", timeout=10).status_code == 200


def test_nesting_one_level_past_the_limit_is_refused_at_the_limit_it_is_not(server):
    deep = package_dict()
    deep["summary"]["events"][0]["attrs"]["files"] = msgspec.json.decode(nested_arrays(MAX_JSON_DEPTH))
    assert_error(post(server, msgspec.json.encode(deep)), 400, "json_too_deep")
    deep["summary"]["events"][0]["attrs"]["files"] = msgspec.json.decode(nested_arrays(MAX_JSON_DEPTH - 5))
    assert_error(post(server, msgspec.json.encode(deep)), 422, "schema_invalid")  # depth fine, shape wrong


def test_deep_nesting_inside_a_valid_package_and_in_gzip_is_a_400(server):
    inner = b'{"a":' * 5_000 + b"1" + b"}" * 5_000
    body = msgspec.json.encode(package_dict()).replace(b'"attrs":{', b'"attrs":{"x":' + inner + b",", 1)
    assert_error(post(server, body), 400, "json_too_deep")
    assert_error(post(server, gzip.compress(body), **{"Content-Encoding": "gzip"}), 400, "json_too_deep")


def test_attrs_per_event_are_capped_and_the_keys_are_never_echoed(server):
    at_limit = make_event(0, attrs={f"{CANARY}k{i}": i for i in range(MAX_ATTRS_PER_EVENT)})
    assert post(server, msgspec.json.encode(make_package(events=[at_limit]))).status_code == 201
    for count in (MAX_ATTRS_PER_EVENT + 1, 100_000):
        event = make_event(1, seed=count, attrs={f"{CANARY}k{i}": i for i in range(count)})
        response = post(server, msgspec.json.encode(make_package(events=[make_event(0, seed=count), event])))
        error = assert_error(response, 422, "limit_exceeded")
        assert error["details"] == [{"pointer": "/summary/events/1/attrs", "rule": "max_attrs_per_event",
                                     "limit": MAX_ATTRS_PER_EVENT}]
        assert CANARY not in response.text


def test_a_too_long_attr_key_is_422_naming_the_rule_not_the_key(server):
    key = CANARY + "k" * (MAX_ATTR_KEY_LENGTH + 1 - len(CANARY))
    event = make_event(0, seed=7, attrs={key: 1})
    response = post(server, msgspec.json.encode(make_package(events=[event])))
    error = assert_error(response, 422, "limit_exceeded")
    assert error["details"][0]["rule"] == "max_attr_key_length"
    assert CANARY not in response.text


def hostile_bodies() -> list[tuple[str, bytes, dict[str, str]]]:
    """(name, body, extra headers): malformed, oversize, compressed, deep, echo bait."""
    rnd = random.Random(8)
    valid = msgspec.json.encode(package_dict(3))
    bait = package_dict()
    bait[CANARY] = CANARY  # an unknown field whose name and value are the canary
    enum_bait = package_dict()
    enum_bait["summary"]["events"][0]["category"] = CANARY
    gz = {"Content-Encoding": "gzip"}
    return [
        ("empty", b"", {}),
        ("null", b"null", {}),
        ("truncated", valid[: len(valid) // 2], {}),
        ("random bytes", rnd.randbytes(4096), {}),
        ("invalid utf-8", b'{"schema_version": "\xff\xfe"}', {}),
        ("utf-8 bom", b"\xef\xbb\xbf" + valid, {}),
        ("nan", valid.replace(b'"event_count":3', b'"event_count":NaN'), {}),
        ("huge number", valid.replace(b'"event_count":3', b'"event_count":1e400'), {}),
        ("huge int", valid.replace(b'"event_count":3', b'"event_count":' + b"9" * 5000), {}),
        ("deep arrays", nested_arrays(50_000), {}),
        ("deep objects", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, {}),
        ("many small arrays", b"[" + b"[]," * 1_000_000 + b"[]]", {}),
        ("unknown field bait", msgspec.json.encode(bait), {}),
        ("enum bait", msgspec.json.encode(enum_bait), {}),
        ("canary in headers", valid[:10], {"Content-Type": f"application/{CANARY}",
                                           "Content-Encoding": CANARY}),
        ("bad content-length", b"{}", {"Content-Length": "-1"}),
        ("corrupt gzip", b"\x1f\x8b\x08\x00" + rnd.randbytes(200), gz),
        ("truncated gzip", gzip.compress(valid)[:-12], gz),
        ("gzip of deep nesting", gzip.compress(nested_arrays(200_000)), gz),
        ("gzip bomb", gzip_bomb(10), gz),
        ("6 MB body", b" " * (6 * MB), {}),
    ]


@pytest.mark.slow
def test_a_battery_of_hostile_bodies_never_gets_a_5xx_nor_grows_memory(server):
    bodies = hostile_bodies()
    rounds = int(os.environ.get("BRANCHPY_FUZZ_ROUNDS", "10"))

    def one_round() -> None:
        for name, body, headers in bodies:
            try:
                response = post(server, body, **headers)
            except requests.ConnectionError:  # the server may close on a body it refused early
                response = None
            if response is None:
                continue
            assert 400 <= response.status_code < 500, (name, response.status_code, response.text[:300])
            assert response.json()["error"]["code"], name
            assert CANARY not in response.text, name
            assert "Traceback" not in response.text, name

    for _ in range(WARM_UP_ROUNDS):  # the allocator's high-water mark: arenas, thread stacks, caches
        one_round()
    rss_before = process_rss_bytes(server.proc.pid)
    for _ in range(rounds):
        one_round()
    growth = process_rss_bytes(server.proc.pid) - rss_before
    assert growth < 32 * MB, f"RSS grew {growth / MB:.1f} MB over {rounds} rounds of {len(bodies)} bodies"
    assert server.proc.poll() is None
    assert requests.get(server.api + "/health", timeout=10).status_code == 200
    assert post(server, msgspec.json.encode(make_package(2, seed=99))).status_code == 201
