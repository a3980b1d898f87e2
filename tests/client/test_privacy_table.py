"""The privacy rules' test table: strings that must be flagged, with the rule,
and near-misses that must pass untouched."""

from __future__ import annotations

from datetime import date

import pytest

from branchpy_telemetry.client.contracts.catalog import DROP_UNDECLARED_ATTR, load_catalog
from branchpy_telemetry.client.contracts.declared import ExportPolicy, sanitize_event
from branchpy_telemetry.client.contracts.event import EventRecord
from branchpy_telemetry.client.contracts.privacy import (
    MAX_STRING_LENGTH,
    RULE_EMAIL,
    RULE_MULTILINE,
    RULE_RAW_PATH,
    RULE_TOO_LONG,
    check_string,
    contains_raw_path,
)
from branchpy_telemetry.client.contracts.redaction import Finding, RedactionReport, find_violations

P, M, L, E = RULE_RAW_PATH, RULE_MULTILINE, RULE_TOO_LONG, RULE_EMAIL

FLAGGED: list[tuple[str, str]] = [
    # --- absolute POSIX
    ("/home/bob/game/script.rpy", P),
    ("/usr", P),  # a single root segment counts (documented choice)
    ("/etc/passwd", P),
    ("/tmp/", P),
    ("/.ssh", P),
    ("/var/log/branchpy.log", P),
    ("//double/leading", P),
    ("/a/b", P),
    ("/1234/5678", P),
    ("see /etc/passwd for details", P),
    ("path:/home/bob", P),
    ("--dir=/srv/data", P),
    ("(/opt/game)", P),
    ("'/Users/alice/Documents'", P),
    # --- home
    ("~/", P),
    ("~/game/script.rpy", P),
    ("~bob/projects", P),
    ("~alice.smith/x", P),
    ("~\\AppData", P),
    ("saved to ~/Desktop", P),
    ("$HOME/projects", P),
    ("${HOME}/vn", P),
    ("%USERPROFILE%\\Documents", P),
    ("%APPDATA%/BranchPy", P),
    # --- Windows drives
    ("C:\\Users\\bob\\game", P),
    ("C:/Users/bob", P),
    ("c:\\temp", P),
    ("d:/", P),
    ("Z:\\", P),
    ("failed at E:\\work\\x.rpy line 3", P),
    ("C:script.rpy", P),  # drive-relative with an extension
    ("\\\\?\\C:\\very\\long", P),
    ("\u0421:\\x", P),  # Cyrillic capital Es as the drive letter
    ("\u0441:/x", P),  # Cyrillic small es
    # --- UNC
    ("\\\\fileserver\\share\\x", P),
    ("\\\\host\\share", P),
    ("\\\\host", P),
    ("copy from \\\\nas01\\games now", P),
    # --- file: URIs, URLs
    ("file:///home/bob/x.rpy", P),
    ("FILE:///C:/x", P),
    ("File:relative.txt", P),
    ("file://host/share", P),
    ("open file:/etc/hosts", P),
    ("http://example.com/a/b", P),
    ("https://example.com", P),  # URLs count, with or without a path (documented)
    ("ftp://h/x", P),
    ("vscode-remote://ssh/x", P),
    # --- relative with an extension
    ("game/script.rpy", P),
    ("..\\x.rpy", P),
    ("./a.txt", P),
    ("../secret", P),  # explicit ./ ../ prefix counts even without an extension
    (".\\run", P),
    ("src\\main.py", P),
    ("a/b/c/d.json", P),
    ("game/images/bg.PNG", P),
    ("data/archive.tar.gz", P),
    ("game/.hidden.cfg", P),
    ("a/.bashrc", P),
    ("loading game/script.rpy:42", P),
    ("see game/script.rpy.", P),
    ("error in game/script.rpy, line 3", P),
    ("key=game/x.rpy", P),
    ("assets/music.mp3", P),
    ("lib/x.7z", P),
    # --- non-ASCII
    ("/home/José/ゲーム/script.rpy", P),
    ("ゲーム/スクリプト.rpy", P),
    ("C:\\Users\\Zoë\\x", P),
    ("/home/Дмитрий", P),
    ("données/été.txt", P),
    # --- percent-encoding, entities, escapes
    ("%2Fhome%2Fbob", P),
    ("%252Fhome%252Fbob", P),
    ("%25252Fetc%25252Fpasswd", P),
    ("C%3A%5CUsers%5Cbob", P),
    ("game%2Fscript.rpy", P),
    ("%7E/x", P),
    ("&#47;home&#47;bob", P),
    ("&sol;etc&sol;passwd", P),
    ("\\u002fhome\\u002fbob", P),
    ("file%3A%2F%2F%2Fx", P),
    # --- look-alikes
    ("\u2215home\u2215bob", P),  # division slash
    ("\u2044etc\u2044passwd", P),  # fraction slash
    ("\uff0fhome\uff0fbob", P),  # fullwidth solidus
    ("game\u2215script.rpy", P),
    ("\uff3c\uff3chost\uff3cshare", P),  # fullwidth reverse solidus
    ("C:\u29f5Users\u29f5bob", P),  # reverse solidus operator
    ("C:\u2216Users", P),  # set minus
    ("C\uff1a\\x", P),  # fullwidth colon
    ("\uff5e/x", P),  # fullwidth tilde
    ("\uff46\uff49\uff4c\uff45:///x", P),  # fullwidth "file"
    ("game/script\uff0erpy", P),  # fullwidth full stop
    ("/ho\u200bme/b\u200bob", P),  # zero-width spaces
    ("\u2571etc\u2571passwd", P),  # box-drawing diagonal
    # --- mixed separators
    ("/home\\bob/x", P),
    ("C:/Users\\bob", P),
    ("\\Windows\\System32", P),
    ("game\\images/bg.png", P),
    # --- content: newlines and length
    ("first line\nsecond line", M),
    ("a\r\nb", M),
    ("carriage\rreturn", M),
    ("line\u2028separator", M),
    ("para\u2029separator", M),
    ("vertical\vtab", M),
    ("next\x85line", M),
    ("trailing newline\n", M),
    ('label "Hello"\n    e "Hi there"', M),
    ("x" * (MAX_STRING_LENGTH + 1), L),
    ("word " * 60, L),
    ("é" * 201, L),
    ("a" * 100_000, L),
    ("\n".join(["x" * 80] * 10), M),
    ("first%0Asecond", M),  # an encoded newline is still one
    ("first&#10;second", M),
    # --- e-mail addresses (personal data: see privacy.py)
    ("jane.doe@example.com", E),
    ("a@b.co", E),
    ("owner: bob+vn@studio.example.org", E),
    ("<alice@corp.example>", E),
    ("mailto:carol@example.net", E),
    ("José.Müller@exemple.fr", E),  # non-ASCII local part
    ("ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", E),  # fullwidth: NFKC folds it to an address
    ("jane\ufe6bexample.com", E),  # small commercial at
    ("jane%40example.com", E),  # percent-encoded @
    ("jane%2540example.com", E),  # twice
    ("jane&#64;example.com", E),  # HTML entity
    ("jane\\u0040example.com", P),  # an escaped @: flagged, the backslash reads as a separator first
    ("git@github.com", E),  # user@host.tld names an account as well
    ("reported by o'brien@example.ie", E),
    ("x@sub.domain.example.co.uk.", E),
]
PASSING: list[str] = [
    "1.2.3",
    "v2.0.0-rc.1",
    "10.0.19045",
    "analyze",
    "telemetry.export",
    "git-commit",
    "a/b",
    "src/main",  # relative, no extension: not a path by the rule
    "0192f0e4-1a2b-7c3d-8e4f-0123456789ab",
    "2026-11-28T01:02:03.456Z",
    "2026-11-28T01:02:03+01:00",
    "sha256:" + "ab12" * 16,
    "2026/11/28",
    "3/4",
    "50/50",
    "and/or",
    "w/o",
    "c/o",
    "N/A",
    "TCP/IP",
    "km/h",
    "I/O",
    "application/json",
    "text/plain",
    "image/svg+xml",
    "application/vnd.api+json",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "BP-E1042",
    "42",
    "-3.5e10",
    "true",
    "",
    "🎉🚀",
    "ゲーム",
    "café naïve",
    "Привет мир",
    "Error: bad thing happened",
    "localhost:8080",
    "127.0.0.1:5000",
    "10.0.0.0/8",
    "v1.2/v1.3",
    "100%",
    "R&D",
    "~5 minutes",
    "a: b",
    "e.g.",
    "x" * MAX_STRING_LENGTH,
    "snake_case_name",
    "CamelCaseName",
    "flag=--json",
    "cmd /?",  # a lone separator is not a path
    "1 / 2",
    "ratio 1/2",
    "tab\tseparated",
    "ValueError",
    "ok",
    "branchpy telemetry export --output rc-metrics",
    "fr-FR",
    "x86_64",
    "Linux-6.1.0-amd64",
    "$5 per month",
    "cost: $HOME",
    "50% done",
    "%s failed",
    "@property",  # a decorator: no local part
    "pkg@1.2.3",  # name@version: the last label is not alphabetic
    "python@3.12",
    "node@v18.x",  # a one-letter last label
    "user@localhost",  # no dot in the domain
    "image@sha256:" + "ab12" * 16,  # a digest reference
    "HEAD@{1}",
    "a@b",
    "foo@bar.com5",
    "@@@",
    "x @ y.com",  # spaced: no local part next to the @
    "50@2.5x",
]


@pytest.mark.parametrize(("text", "rule"), FLAGGED, ids=[f"flag{i:03d}" for i in range(len(FLAGGED))])
def test_check_string_flags_tricky_case_with_expected_rule(text: str, rule: str) -> None:
    assert check_string(text) == rule


@pytest.mark.parametrize("text", PASSING, ids=[f"pass{i:03d}" for i in range(len(PASSING))])
def test_check_string_lets_near_miss_pass(text: str) -> None:
    assert check_string(text) is None
    assert contains_raw_path(text) is False


@pytest.mark.parametrize("text", [t for t, r in FLAGGED if r == P], ids=lambda t: f"len{len(t)}")
def test_path_inside_a_longer_sentence_is_still_flagged(text: str) -> None:
    assert check_string(f"could not load {text} because") == P
    assert contains_raw_path(f"x {text}")


def test_table_is_large_enough_for_acceptance() -> None:
    assert len(FLAGGED) >= 80
    assert len(PASSING) >= 30


def test_raw_path_wins_over_multiline_and_length() -> None:
    text = "Traceback:\n  File /home/bob/x.py\n" + "x" * 300
    assert check_string(text) == P


def test_multiline_wins_over_length() -> None:
    assert check_string("a\n" + "b" * 300) == M


PATH_CASES = [text for text, rule in FLAGGED if rule == P]


@pytest.mark.parametrize("key", PATH_CASES, ids=[f"key{i:03d}" for i in range(len(PATH_CASES))])
def test_path_used_as_a_key_is_flagged_at_the_containing_object(key: str) -> None:
    doc = {"summary": {"events": [{"attrs": {key: 1, "n": 2}}]}, "usage_statistics": {"commands": {key: 3}}}
    findings = find_violations(doc)
    assert findings == [
        Finding("/summary/events/0/attrs", P, "key"),
        Finding("/usage_statistics/commands", P, "key"),
    ]
    report = RedactionReport()
    record = EventRecord(event_id="0192f0e4-1a2b-7c3d-8e4f-0123456789ab", ts="2026-11-28T01:02:03.456Z",
                         category="command", source="cli", name="analyze", attrs={key: "v", "files": 2})
    policy = ExportPolicy(catalog=load_catalog(), today=date(2026, 12, 1), id_key=b"k" * 32)
    event = sanitize_event(record, 0, report, policy)
    assert event.attrs == {"files": 2}
    assert report.findings == [Finding("/summary/events/0/attrs", DROP_UNDECLARED_ATTR, "key")]
