"""The upload's privacy gate answers exactly like `find_violations` (the rule
module's own walk): [] for clean packages, the same findings otherwise."""

from __future__ import annotations

import copy

import msgspec
import pytest

from branchpy_telemetry.backend.privacy_gate import find_package_violations
from branchpy_telemetry.client.privacy import find_violations

from .conftest import make_package

BAD_STRINGS = [
    "/home/alice/game/script.rpy", "~/projects/x", "~bob/notes.txt", "C:\\Users\\bob\\game.rpy", "C:/x/y.rpy",
    "\\\\server\\share\\file", "file:///etc/passwd", "game/script.rpy", "..\\x.rpy", "%2Fhome%2Falice%2Fa.py",
    "／ｈｏｍｅ／alice／a.py", "two\nlines", "x" * 201,
]
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


@pytest.mark.parametrize("key", ["content", "snippet", "raw_message", "source_code", "dialogue"])
def test_content_keys_in_attrs_are_flagged_like_find_violations(clean, key):
    package = copy.deepcopy(clean)
    package["summary"]["events"][2]["attrs"][key] = "harmless"
    expected = find_violations(package)
    assert expected and find_package_violations(package) == expected


def test_content_words_outside_attrs_are_judged_like_find_violations(clean):
    package = copy.deepcopy(clean)
    package["usage_statistics"]["features"]["text"] = 2  # not an attrs mapping
    package["summary"]["events"][3]["attrs"]["nested"] = [{"content": "x"}]  # a dict in a list under attrs
    assert find_package_violations(package) == find_violations(package)
