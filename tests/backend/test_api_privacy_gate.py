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
from branchpy_telemetry.client.privacy import MAX_STRING_LENGTH, check_string, find_violations
from branchpy_telemetry.client.schema import decode_package

from .conftest import make_package

BAD_STRINGS = [
    "/home/alice/game/script.rpy", "~/projects/x", "~bob/notes.txt", "C:\\Users\\bob\\game.rpy", "C:/x/y.rpy",
    "\\\\server\\share\\file", "file:///etc/passwd", "game/script.rpy", "..\\x.rpy", "%2Fhome%2Falice%2Fa.py",
    "／ｈｏｍｅ／alice／a.py", "two\nlines", "x" * 201, "alice@example.com", "alice%40example.com",
]
# attrs keys the rules drop by what they name (content_field, secret_field)
FLAGGED_ATTR_KEYS = ["content", "snippet", "raw_message", "source_code", "dialogue", "api_key", "authToken",
                     "password"]
LOCATIONS = [
    lambda p, s: p["summary"]["events"][0].__setitem__("name", s),
    lambda p, s: p["summary"]["events"][1]["attrs"].__setitem__("file", s),
    lambda p, s: p["summary"]["events"][1]["attrs"].__setitem__(s, 1),
    lambda p, s: p["platform"].__setitem__("os_release", s),
    lambda p, s: p["usage_statistics"]["commands"].__setitem__(s, 3),
    lambda p, s: p["correlation_ids"].append(s),
    lambda p, s: p["summary"]["redactions"].__setitem__(s, 1),
]


@pytest.fixture(scope="module")
def clean():
    return msgspec.to_builtins(make_package(40, seed=301))


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
    body = msgspec.json.encode(clean).replace(b'"os":"linux"', b'"os":"' + text.encode() + b'"', 1)
    assert not body_is_plain(body)
    assert find_upload_violations(body, decode_package(body)) == find_violations(msgspec.json.decode(body))


@pytest.mark.parametrize("text", ["2026-11-28T03:00:00Z", "sha256:" + "0" * 64, "BP-E100", "x86_64",
                                  "a b+c,d", "[1]", "{x}", "x" * MAX_STRING_LENGTH])
def test_the_byte_prefilter_passes_common_metadata(clean, text):
    body = msgspec.json.encode(clean).replace(b'"os":"linux"', b'"os":"' + text.encode() + b'"', 1)
    assert body_is_plain(body)


@pytest.mark.parametrize("text", ["a:b", "C:x", "x/y", "~x", "50%", "a&b", "é",
                                  "x" * (MAX_STRING_LENGTH + 1)])
def test_the_byte_prefilter_sends_anything_else_to_the_rules(clean, text):
    body = msgspec.json.encode(clean).replace(b'"os":"linux"', msgspec.json.encode({"os": text})[1:-1], 1)
    assert not body_is_plain(body)
    assert find_upload_violations(body, decode_package(body)) == find_violations(msgspec.json.decode(body))


# What the prefilter lets through must pass the rules: if client/privacy.py ever flags such a
# string, this fails and body_is_plain's alphabet must shrink.
PLAIN_CHARS = sorted(set(SAFE_BYTES.decode()) - set('"\t\n\r'))
PLAIN_TEXT = st.text(st.sampled_from(PLAIN_CHARS), max_size=MAX_STRING_LENGTH)
EXAMPLES = int(os.environ.get("BRANCHPY_HYPOTHESIS_EXAMPLES", "300"))


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(PLAIN_TEXT)
def test_every_string_the_byte_prefilter_passes_passes_check_string(text):
    body = msgspec.json.encode({"os": text})
    if body_is_plain(body):
        assert check_string(text) is None
    else:
        assert re.search(r"[A-Za-z]:", text), "only a letter before a colon is refused from this alphabet"


@pytest.mark.parametrize("text", ["a:", "/", "\\", "~", "%", "&", "@", "\n", "é", "\u2215", "ａ:"])
def test_the_safe_alphabet_excludes_every_rule_trigger(text):
    assert not body_is_plain(msgspec.json.encode({"os": text}))
