"""The upload's privacy gate answers exactly like `find_violations` (the rule
module's own walk): [] for clean packages, the same findings otherwise — both
on decoded JSON (`find_package_violations`) and on the body bytes of a
schema-valid upload (`find_upload_violations`)."""

from __future__ import annotations

import copy
import os
import re

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from branchpy_telemetry.backend.privacy_gate import (
    SAFE_BYTES,
    body_is_plain,
    find_package_violations,
    find_upload_violations,
)
from branchpy_telemetry.client.contracts.credential_shapes import secret_value_rule
from branchpy_telemetry.client.contracts.privacy import MAX_STRING_LENGTH, TRIGGER_CHARS, check_string
from branchpy_telemetry.client.contracts.redaction import find_violations
from branchpy_telemetry.client.contracts.schema import decode_package

from .conftest import make_package

BAD_STRINGS = [
    "/home/alice/game/script.rpy", "~/projects/x", "~bob/notes.txt", "C:\\Users\\bob\\game.rpy", "C:/x/y.rpy",
    "\\\\server\\share\\file", "file:///etc/passwd", "game/script.rpy", "..\\x.rpy", "%2Fhome%2Falice%2Fa.py",
    "／ｈｏｍｅ／alice／a.py", "two\nlines", "x" * 201, "alice@example.com", "alice%40example.com",
    # credentials by shape: plain bytes every byte class passes
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "AKIAIOSFODNN7EXAMPLE", "xoxb-1234567890-abcdefghij",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig123", "bpt_1f55c424_VgdDcVDCLcpIP7sK4ACPuHCOoxdD4A1XrnPh",
    "a8Fk29dkLmQ0pZ7xYt3Rq",
]
# attrs keys the rules drop by what they name (content_field, secret_field)
FLAGGED_ATTR_KEYS = ["content", "snippet", "raw_message", "source_code", "dialogue", "api_key", "authToken",
                     "password"]
# Places a sender chooses the text of (fields with a fixed format refuse any other text while
# decoding, before these rules: tests/backend/test_api_catalog.py)
LOCATIONS = [
    lambda p, s: p["summary"]["events"][0].__setitem__("name", s),
    lambda p, s: p["summary"]["events"][1]["attrs"].__setitem__("file", s),
    lambda p, s: p["summary"]["events"][1]["attrs"].__setitem__(s, 1),
    lambda p, s: p["summary"]["events"][2].__setitem__("error_code", s),
    lambda p, s: p["usage_statistics"]["commands"].__setitem__(s, 3),
    lambda p, s: p["errors"].append({"error_hash": "sha256:" + "1" * 64, "name": s, "count": 1,
                                     "first_seen": "2026-11-20T08:00:00.000Z",
                                     "last_seen": "2026-11-20T08:00:00.000Z"}),
    lambda p, s: p["summary"]["redactions"].__setitem__(s, 1),
]


MARK = b'"name":"marked-name"'  # the first event's name: where a test puts its text into the body


@pytest.fixture(scope="module")
def clean():
    package = msgspec.to_builtins(make_package(40, seed=301))
    package["summary"]["events"][0]["name"] = "marked-name"
    return package


def with_name(clean: dict, text_json: bytes) -> bytes:
    """The clean body with the first event's name replaced by `text_json` (a JSON string, raw)."""
    return msgspec.json.encode(clean).replace(MARK, b'"name":' + text_json, 1)


def test_a_clean_package_passes_both(clean):
    assert find_violations(clean) == [] and find_package_violations(clean) == []


@pytest.mark.parametrize("bad", BAD_STRINGS)
@pytest.mark.parametrize("where", range(len(LOCATIONS)))
def test_a_bad_string_anywhere_gives_the_same_findings(clean, bad, where):
    package = copy.deepcopy(clean)
    LOCATIONS[where](package, bad)
    expected = find_violations(package)
    assert expected, "the rule module itself must flag this"
    assert find_package_violations(package) == expected


@pytest.mark.parametrize("key", FLAGGED_ATTR_KEYS)
def test_content_and_secret_keys_in_attrs_are_flagged_like_find_violations(clean, key):
    package = copy.deepcopy(clean)
    package["summary"]["events"][2]["attrs"][key] = "harmless"
    expected = find_violations(package)
    assert expected and find_package_violations(package) == expected


def test_content_words_outside_attrs_are_judged_like_find_violations(clean):
    package = copy.deepcopy(clean)
    package["usage_statistics"]["features"]["text"] = 2  # not an attrs mapping
    package["summary"]["events"][3]["attrs"]["nested"] = [{"content": "x"}]  # a dict in a list under attrs
    assert find_package_violations(package) == find_violations(package)


# ---- find_upload_violations: the same answer from the body bytes and the decoded package ----

def upload_answer(package: dict) -> list:
    body = msgspec.json.encode(package)
    return find_upload_violations(body, decode_package(body))


def test_a_clean_body_passes_the_upload_gate_on_the_byte_prefilter(clean):
    body = msgspec.json.encode(clean)
    assert body_is_plain(body)
    assert find_upload_violations(body, decode_package(body)) == []


@pytest.mark.parametrize("bad", BAD_STRINGS)
@pytest.mark.parametrize("where", range(len(LOCATIONS)))
def test_the_upload_gate_gives_the_same_findings_for_a_bad_string_anywhere(clean, bad, where):
    package = copy.deepcopy(clean)
    LOCATIONS[where](package, bad)
    expected = find_violations(package)
    assert expected
    assert upload_answer(package) == expected


@pytest.mark.parametrize("key", FLAGGED_ATTR_KEYS)
def test_the_upload_gate_flags_content_and_secret_keys_in_attrs(clean, key):
    package = copy.deepcopy(clean)
    package["summary"]["events"][2]["attrs"][key] = "harmless"
    expected = find_violations(package)
    assert expected and upload_answer(package) == expected


def test_the_upload_gate_checks_an_attrs_mapping_outside_the_events(clean):
    package = copy.deepcopy(clean)
    package["performance_metrics"]["attrs"] = {"count": 1, "total_ms": 1.0, "mean_ms": 1.0, "p50_ms": 1.0,
                                               "p95_ms": 1.0, "max_ms": 1.0}
    package["usage_statistics"]["commands"]["attrs"] = 2
    assert upload_answer(package) == find_violations(package) == []
    package["usage_statistics"]["features"]["text"] = 2  # not an attrs mapping: passes
    assert upload_answer(package) == find_violations(package) == []


def test_a_repeated_attrs_key_is_judged_on_the_value_the_decoder_keeps(clean):
    body = msgspec.json.encode(clean)
    event = msgspec.json.encode(clean["summary"]["events"][0])
    # the first "attrs" of the event is overridden by the second: only the second is the package's
    doubled = event[:-1] + b',"attrs":{"content":"x"}}'
    hidden = event[:-1].replace(b'"attrs":{', b'"attrs":{"content":"x"},"attrs":{', 1) + b"}"
    for variant, bad in ((doubled, True), (hidden, False)):
        package_body = body.replace(event, variant, 1)
        expected = find_violations(msgspec.json.decode(package_body))
        assert bool(expected) is bad
        assert find_upload_violations(package_body, decode_package(package_body)) == expected


@pytest.mark.parametrize("text", ["a\\u002fb", "caf\\u00e9", "tab\\tin", 'quote\\"d'])
def test_escaped_strings_are_judged_on_their_decoded_value(clean, text):
    body = with_name(clean, b'"' + text.encode() + b'"')
    assert not body_is_plain(body)
    assert find_upload_violations(body, decode_package(body)) == find_violations(msgspec.json.decode(body))


@pytest.mark.parametrize("text", ["2026-11-28T03:00:00Z", "sha256:" + "0" * 64, "BP-E100", "x86_64",
                                  "a b+c,d", "[1]", "{x}", "x" * MAX_STRING_LENGTH])
def test_the_byte_prefilter_passes_common_metadata(clean, text):
    body = with_name(clean, b'"' + text.encode() + b'"')
    assert body_is_plain(body)


@pytest.mark.parametrize("text", ["a:b", "C:x", "x/y", "~x", "50%", "a&b", "é",
                                  "x" * (MAX_STRING_LENGTH + 1)])
def test_the_byte_prefilter_sends_anything_else_to_the_rules(clean, text):
    body = with_name(clean, msgspec.json.encode(text))
    assert not body_is_plain(body)
    assert find_upload_violations(body, decode_package(body)) == find_violations(msgspec.json.decode(body))


# What the prefilter lets through must pass the character rules: if client/contracts/privacy.py ever flags
# such a string for anything but a credential's shape (which `_no_secret_shapes` checks on the
# decoded package), this fails and the trigger characters must grow.
PLAIN_CHARS = sorted(set(SAFE_BYTES.decode()) - set('"\t\n\r'))
PLAIN_TEXT = st.text(st.sampled_from(PLAIN_CHARS), max_size=MAX_STRING_LENGTH)
EXAMPLES = int(os.environ.get("BRANCHPY_HYPOTHESIS_EXAMPLES", "300"))


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(PLAIN_TEXT)
def test_every_string_the_byte_prefilter_passes_passes_check_string(text):
    body = msgspec.json.encode({"os": text})
    if body_is_plain(body):
        assert check_string(text) in (None, "secret_value")
        assert (check_string(text) is None) == (secret_value_rule(text) is None)
    else:
        assert re.search(r"[A-Za-z]:", text), "only a letter before a colon is refused from this alphabet"


@pytest.mark.parametrize("text", ["a:", "/", "\\", "~", "%", "&", "@", "\n", "é", "\u2215", "ａ:"])
def test_the_safe_alphabet_excludes_every_rule_trigger(text):
    assert not body_is_plain(msgspec.json.encode({"os": text}))


def test_the_safe_alphabet_is_derived_from_the_one_definition_of_trigger_characters():
    assert not set(TRIGGER_CHARS) & set(SAFE_BYTES.decode())
    assert set(SAFE_BYTES.decode()) | set(TRIGGER_CHARS) >= {chr(c) for c in range(0x20, 0x7F)}
