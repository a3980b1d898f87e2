"""sanitize_event, the redaction report, content keys, error hashing and the
server's find_violations (DESIGN §7)."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import msgspec
import pytest

from branchpy_telemetry.client.event import ErrorInfo, EventRecord, event_decoder, event_encoder
from branchpy_telemetry.client.privacy import (
    MAX_STRING_LENGTH,
    REDACTED,
    RULE_CONTENT_FIELD,
    RULE_MULTILINE,
    RULE_NESTED,
    RULE_RAW_PATH,
    RULE_SECRET_FIELD,
    RULE_TOO_LONG,
    Finding,
    RedactionReport,
    attr_key_rule,
    check_string,
    find_violations,
    hash_error_message,
    is_content_key,
    normalize_error_message,
    sanitize_event,
)
from branchpy_telemetry.client.schema import SanitizedEvent, package_decoder

EVENT_ID = "0192f0e4-1a2b-7c3d-8e4f-0123456789ab"
SESSION = "0192f0e4-1a2b-7c3d-8e4f-aaaaaaaaaaaa"
TS = "2026-11-28T01:02:03.456Z"
HASH_RE = re.compile(r"sha256:[0-9a-f]{64}")


def make_record(**fields) -> EventRecord:
    """A record as the exporter sees it: encoded to a spool line and decoded back."""
    base = dict(event_id=EVENT_ID, ts=TS, category="command", source="cli", name="analyze")
    base.update(fields)
    return event_decoder.decode(event_encoder.encode(EventRecord(**base)))


def sanitize(record: EventRecord, index: int = 3) -> tuple[SanitizedEvent, RedactionReport, bytes]:
    report = RedactionReport()
    event = sanitize_event(record, index, report)
    return event, report, msgspec.json.encode(event)


# --- sanitize_event ------------------------------------------------------------


def test_clean_event_passes_unchanged_with_empty_report() -> None:
    rec = make_record(
        duration_ms=412.5,
        status="ok",
        session_id=SESSION,
        correlation_id=SESSION,
        attrs={"flag_json": True, "files_scanned": 120, "ratio": 0.5, "mode": "fast", "none": None},
    )
    event, report, _ = sanitize(rec)
    assert event == SanitizedEvent(
        event_id=EVENT_ID,
        ts=TS,
        category="command",
        source="cli",
        name="analyze",
        duration_ms=412.5,
        status="ok",
        session_id=SESSION,
        correlation_id=SESSION,
        attrs={"flag_json": True, "files_scanned": 120, "ratio": 0.5, "mode": "fast", "none": None},
    )
    assert report.counts == {} and report.findings == [] and report.total == 0


def test_clean_event_with_offset_timestamp_and_unicode_name_passes() -> None:
    rec = make_record(ts="2026-11-28T02:02:03.456+01:00", name="analyse-café", status="ok")
    event, report, _ = sanitize(rec)
    assert (event.ts, event.name, report.total) == ("2026-11-28T02:02:03.456+01:00", "analyse-café", 0)


def test_attr_value_with_path_is_dropped_and_reported_by_pointer() -> None:
    secret = "/home/bob/game/script.rpy"
    event, report, encoded = sanitize(make_record(attrs={"target": secret, "n": 1}))
    assert event.attrs == {"n": 1}
    assert report.findings == [Finding("/summary/events/3/attrs/target", RULE_RAW_PATH)]
    assert report.counts == {RULE_RAW_PATH: 1}
    assert b"bob" not in encoded and b"script" not in encoded


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("line one\nline two", RULE_MULTILINE),
        ("y" * (MAX_STRING_LENGTH + 1), RULE_TOO_LONG),
        ("C:\\Users\\bob", RULE_RAW_PATH),
        ("%2Fhome%2Fbob", RULE_RAW_PATH),
    ],
)
def test_attr_value_breaking_a_string_rule_is_dropped_with_that_rule(value: str, rule: str) -> None:
    event, report, encoded = sanitize(make_record(attrs={"v": value, "ok": "fine"}))
    assert event.attrs == {"ok": "fine"}
    assert report.findings == [Finding("/summary/events/3/attrs/v", rule)]
    assert value.encode() not in encoded


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2], [], {}])
def test_non_scalar_attr_value_is_dropped_as_nested(value) -> None:
    event, report, _ = sanitize(make_record(attrs={"deep": value, "n": 2}))
    assert event.attrs == {"n": 2}
    assert report.findings == [Finding("/summary/events/3/attrs/deep", RULE_NESTED)]


@pytest.mark.parametrize(
    "key",
    [
        "content",
        "text",
        "Source-Code",
        "scriptText",
        "raw_message",
        "dialogue",
        "body",
        "line",
        "snippet",
        "message",
    ],
)
def test_content_key_is_dropped_with_a_key_finding_on_the_attrs_object(key: str) -> None:
    event, report, encoded = sanitize(make_record(attrs={key: "hello world", "n": 1}))
    assert event.attrs == {"n": 1}
    assert report.findings == [Finding("/summary/events/3/attrs", RULE_CONTENT_FIELD, "key")]
    assert b"hello world" not in encoded


def test_content_key_is_dropped_even_when_its_value_is_a_number() -> None:
    event, report, _ = sanitize(make_record(attrs={"line": 42}))
    assert event.attrs == {}
    assert report.counts == {RULE_CONTENT_FIELD: 1}


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        ("/home/bob/project", RULE_RAW_PATH),
        ("game/script.rpy", RULE_RAW_PATH),
        ("multi\nline", RULE_MULTILINE),
        ("k" * (MAX_STRING_LENGTH + 1), RULE_TOO_LONG),
    ],
)
def test_attr_key_breaking_a_rule_is_dropped_and_never_named(key: str, rule: str) -> None:
    event, report, encoded = sanitize(make_record(attrs={key: 1, "n": 2}))
    assert event.attrs == {"n": 2}
    assert report.findings == [Finding("/summary/events/3/attrs", rule, "key")]
    dumped = msgspec.json.encode(report.to_dict())
    assert key.encode() not in encoded and key.encode() not in dumped


@pytest.mark.parametrize(
    ("field", "pointer_field"),
    [
        ("name", "name"),
        ("status", "status"),
        ("session_id", "session_id"),
        ("correlation_id", "correlation_id"),
        ("event_id", "event_id"),
        ("ts", "ts"),
    ],
)
def test_structural_string_breaking_a_rule_is_replaced_by_redacted(field: str, pointer_field: str) -> None:
    secret = "/Users/alice/secret.rpy"
    event, report, encoded = sanitize(make_record(**{field: secret}), index=7)
    assert getattr(event, pointer_field) == REDACTED
    assert report.findings == [Finding(f"/summary/events/7/{pointer_field}", RULE_RAW_PATH)]
    assert b"alice" not in encoded


def test_error_code_with_path_is_redacted_and_message_is_hashed() -> None:
    rec = make_record(
        status="error", error=ErrorInfo(code="~/x", type="ValueError", message="bad value in /home/bob/a.rpy")
    )
    event, report, encoded = sanitize(rec)
    assert event.error_code == REDACTED
    assert HASH_RE.fullmatch(event.error_hash)
    assert report.findings == [Finding("/summary/events/3/error_code", RULE_RAW_PATH)]
    assert b"bob" not in encoded and b"ValueError" not in encoded and b"bad value" not in encoded


def test_clean_error_code_is_kept_and_hash_covers_type_and_normalized_message() -> None:
    rec = make_record(error=ErrorInfo(code="BP-E1042", type="KeyError", message="missing 'player_name'"))
    event, report, _ = sanitize(rec)
    assert event.error_code == "BP-E1042"
    assert event.error_hash == hash_error_message("missing 'player_name'", "KeyError")
    assert report.total == 0


def test_error_with_type_only_is_hashed_and_error_without_message_or_type_is_not() -> None:
    typed, _, _ = sanitize(make_record(error=ErrorInfo(type="TimeoutError")))
    assert typed.error_hash == hash_error_message("", "TimeoutError")
    coded, _, _ = sanitize(make_record(error=ErrorInfo(code="BP-E1")))
    assert (coded.error_code, coded.error_hash) == ("BP-E1", None)


def test_event_full_of_private_data_leaks_nothing_into_event_or_report() -> None:
    secrets = [
        "/home/bob/game/script.rpy",
        "C:\\Users\\bob\\x.rpy",
        "\\\\nas\\share",
        "file:///etc/hosts",
        "game/script.rpy",
        'label start:\n    e "Hi"',
        "z" * 300,
        "%2Fhome%2Fbob",
        "\uff0fhome\uff0fbob",
        "~bob/notes.txt",
    ]
    attrs = {f"a{i}": s for i, s in enumerate(secrets)}
    attrs.update({"content": "private text", "script": "say hi", "nested": {"k": "/etc/x"}, "ok": 1})
    attrs["/home/bob/k"] = 5
    rec = make_record(
        name="~/run",
        status="C:/x",
        session_id="/tmp/s",
        attrs=attrs,
        error=ErrorInfo(code="E1", type="OSError", message="cannot open /home/bob/game/script.rpy"),
    )
    event, report, encoded = sanitize(rec)
    assert event.attrs == {"ok": 1}
    dumped = msgspec.json.encode(report.to_dict())
    for secret in [
        *secrets,
        "private text",
        "say hi",
        "/etc/x",
        "/home/bob/k",
        "bob",
        "~/run",
        "C:/x",
        "/tmp/s",
        "OSError",
        "cannot open",
    ]:
        needle = msgspec.json.encode(secret)[1:-1]
        assert needle not in encoded, secret
        assert needle not in dumped, secret
    assert report.total == len(secrets) + 2 + 1 + 1 + 3
    assert report.counts[RULE_CONTENT_FIELD] == 2 and report.counts[RULE_NESTED] == 1
    assert find_violations(msgspec.to_builtins(event), "/summary/events/3") == []


def test_sanitized_event_always_passes_the_server_check() -> None:
    rec = make_record(attrs={"a/b": "x", "p": "/etc/x", "t~": "ok", "text": "t"})
    event, _, _ = sanitize(rec)
    assert event.attrs == {"a/b": "x", "t~": "ok"}
    assert find_violations(msgspec.to_builtins(event)) == []


def test_attr_pointer_escapes_slash_and_tilde_per_rfc6901() -> None:
    _, report, _ = sanitize(make_record(attrs={"a/b~c": {"x": 1}}))
    assert report.findings == [Finding("/summary/events/3/attrs/a~1b~0c", RULE_NESTED)]


def test_event_without_attrs_gets_empty_attrs() -> None:
    event, _, encoded = sanitize(make_record())
    assert event.attrs == {} and b"attrs" not in encoded


# --- the report ------------------------------------------------------------------


def test_report_to_dict_has_counts_findings_total_and_no_values() -> None:
    report = RedactionReport()
    report.add("/summary/events/0/attrs/x", RULE_RAW_PATH)
    report.add("/summary/events/0/attrs", RULE_CONTENT_FIELD, "key")
    report.add("/summary/events/1/attrs/y", RULE_RAW_PATH)
    assert report.to_dict() == {
        "counts": {RULE_CONTENT_FIELD: 1, RULE_RAW_PATH: 2},
        "findings": [
            {"pointer": "/summary/events/0/attrs/x", "rule": RULE_RAW_PATH, "location": "value"},
            {"pointer": "/summary/events/0/attrs", "rule": RULE_CONTENT_FIELD, "location": "key"},
            {"pointer": "/summary/events/1/attrs/y", "rule": RULE_RAW_PATH, "location": "value"},
        ],
        "total": 3,
        "findings_omitted": 0,
    }


def test_report_keeps_at_most_max_findings_but_counts_everything() -> None:
    report = RedactionReport(max_findings=2)
    for i in range(5):
        report.add(f"/summary/events/{i}/name", RULE_RAW_PATH)
    assert len(report.findings) == 2 and report.omitted == 3
    assert report.to_dict()["total"] == 5 and report.to_dict()["findings_omitted"] == 3


# --- content keys ------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "content",
        "Content",
        "CONTENT",
        "text",
        "source_code",
        "Source-Code",
        "sourceCode",
        "src_code",
        "snippet",
        "body",
        "line",
        "lines",
        "script",
        "scriptText",
        "dialogue",
        "dialog",
        "message",
        "raw_message",
        "rawMessage",
        "error_message",
        "msg",
        "text_value",
        "body_html",
        "stack-trace",
        "traceback",
        "user input text",
        "file.contents",
        "Message",
        "line2",
        "text_1",
        "user_input",
        "userInput",
        "raw_input",
        "HTMLBody",
        "ｔｅｘｔ",
    ],
)
def test_is_content_key_recognises_free_text_keys(key: str) -> None:
    assert is_content_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "flag_json",
        "files_scanned",
        "line_count",
        "lines_scanned",
        "message_id",
        "text_length",
        "error_code",
        "exit_code",
        "code",
        "source",
        "mode",
        "status",
        "content_type",
        "duration_ms",
        "script_count",
        "bodyless",
        "lineno",
        "",
        "123",
        "input_mode",
        "output",
        "codeSnippetCount",
    ],
)
def test_is_content_key_lets_metadata_keys_pass(key: str) -> None:
    assert not is_content_key(key)
    assert attr_key_rule(key) is None


SECRET_KEYS = ["password", "userPassword", "db_passwd", "pwd", "passphrase", "secret", "client_secret",
               "token", "auth_token", "access-token", "refreshToken", "ID_TOKEN", "api_key", "API_KEY",
               "x-api-key", "APIKey", "apiKeys", "private_key", "privateKey", "aws_secret_access_key",
               "accessKey", "sessionKey", "signing_key", "credentials", "Credential", "cookie",
               "set_cookies", "Authorization", "bearer", "otp", "totp_2", "token_value", "password_raw",
               "secret.data", "ｔｏｋｅｎ"]
NOT_SECRET_KEYS = ["max_tokens", "token_count", "tokens", "tokenizer", "token_type", "password_length",
                   "secret_count", "hotkey", "key", "keys", "key_binding", "keyboard", "cookie_consent",
                   "auth_method", "pwd_changed", "cwd", "otp_enabled", "api_version", "session_id",
                   "credential_count", "is_authorized"]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_attr_key_rule_names_credential_keys_secret_fields(key: str) -> None:
    assert attr_key_rule(key) == RULE_SECRET_FIELD
    assert not is_content_key(key)


@pytest.mark.parametrize("key", NOT_SECRET_KEYS)
def test_attr_key_rule_lets_counts_and_metadata_about_secrets_pass(key: str) -> None:
    assert attr_key_rule(key) is None


def test_a_secret_attr_is_dropped_whatever_its_value_and_reported_by_pointer() -> None:
    rec = make_record(attrs={"api_key": "bpt_1f55c424_VgdDcVDCLcpIP7sK4ACPuHCOoxdD4A1XrnPh46uQK44",
                             "pin": 1234, "password": 98765, "max_tokens": 512})
    event, report, wire = sanitize(rec, 0)
    assert event.attrs == {"pin": 1234, "max_tokens": 512}
    assert sorted((f.pointer, f.rule) for f in report.findings) == [
        ("/summary/events/0/attrs", RULE_SECRET_FIELD), ("/summary/events/0/attrs", RULE_SECRET_FIELD)]
    assert b"VgdDcVDC" not in wire and b"98765" not in wire
    found = find_violations({"attrs": {"password": 1, "n": 2}})
    assert found == [Finding("/attrs", RULE_SECRET_FIELD, "key")]


# --- error normalization and hashing ----------------------------------------------------


@pytest.mark.parametrize(
    ("one", "two"),
    [
        ("No such file: '/home/bob/game/script.rpy'", "No such file: '/Users/alice/proj/x.rpy'"),
        ("No such file: /home/bob/game/script.rpy", "No such file: C:\\Users\\al\\game\\other.rpy"),
        ("cannot open C:\\Users\\John Smith\\game\\x.rpy now", "cannot open C:\\Users\\bob\\game\\x.rpy now"),
        ("timeout after 30s on attempt 3", "timeout after 125s on attempt 1"),
        ("object at 0x7f3a2b1c0d90 is gone", "object at 0x55d1e2f3a4b0 is gone"),
        (
            "session 0192f0e4-1a2b-7c3d-8e4f-0123456789ab expired",
            "session 11111111-2222-3333-4444-555555555555 expired",
        ),
        ('KeyError: "player_name"', 'KeyError: "score"'),
        ("mail bob@example.com failed", "mail alice.x+y@corp.example.org failed"),
        ("GET https://example.com/u/bob failed", "GET http://internal:8080/a/b?c=d failed"),
        ("open file:///home/bob/x failed", "open file:///C:/Users/al/y failed"),
        ("  spaces   collapse\there ", "spaces collapse here"),
        ("digest deadbeef0123456789 mismatch", "digest 0123abcdef987654 mismatch"),
        ("loading game/script.rpy:42", "loading game/other/chapter2.rpy:7"),
        ("bad path %2Fhome%2Fbob%2Fx", "bad path /home/al/y"),
    ],
)
def test_same_failure_with_different_details_hashes_the_same(one: str, two: str) -> None:
    assert normalize_error_message(one) == normalize_error_message(two)
    assert hash_error_message(one, "OSError") == hash_error_message(two, "OSError")


@pytest.mark.parametrize(
    ("one", "two"),
    [
        ("No such file", "Permission denied"),
        ("division by zero", "list index out of range"),
        ("cannot open file", "cannot close file"),
    ],
)
def test_different_failures_hash_differently(one: str, two: str) -> None:
    assert hash_error_message(one) != hash_error_message(two)


def test_error_type_is_part_of_the_hash() -> None:
    assert hash_error_message("boom", "ValueError") != hash_error_message("boom", "KeyError")
    assert hash_error_message("boom", None) == hash_error_message("boom", "")


def test_hash_format_is_sha256_prefix_and_64_hex() -> None:
    for message in ["", "x", "a\nb" * 1000, "/home/bob", "é🎉"]:
        assert HASH_RE.fullmatch(hash_error_message(message, "E"))


def test_normalized_message_holds_no_path_number_or_id() -> None:
    text = normalize_error_message(
        "FileNotFoundError at /home/bob/x.rpy line 42 id 0192f0e4-1a2b-7c3d-8e4f-0123456789ab"
        " ptr 0xdead 'lit'"
    )
    assert text == "FileNotFoundError at <path> line <n> id <uuid> ptr <hex> <str>"


# --- find_violations (server) --------------------------------------------------------------


def test_find_violations_on_clean_package_dict_is_empty() -> None:
    rec = make_record(status="ok", attrs={"n": 1, "mode": "fast"})
    event, _, _ = sanitize(rec, index=0)
    package = {
        "schema_version": "1.0.0",
        "summary": {"events": [msgspec.to_builtins(event)]},
        "usage_statistics": {"commands": {"analyze": 1, "telemetry.export": 2}},
        "errors": [{"error_hash": "sha256:" + "a" * 64, "first_seen": TS}],
    }
    assert find_violations(package) == []


def test_find_violations_reports_deep_values_with_rfc6901_pointers() -> None:
    doc = {"a": [{"b": {"c/d": ["ok", "/etc/passwd"], "e~f": "x\ny"}}], "g": "z" * 201}
    assert find_violations(doc) == [
        Finding("/a/0/b/c~1d/1", RULE_RAW_PATH),
        Finding("/a/0/b/e~0f", RULE_MULTILINE),
        Finding("/g", RULE_TOO_LONG),
    ]


def test_find_violations_key_finding_points_at_containing_object_without_the_key() -> None:
    doc = {
        "summary": {"events": [{"attrs": {"/home/bob/k": {"deep": "/home/bob/v"}, "content": "hi"}}]},
        "usage_statistics": {"commands": {"C:\\x": 1}},
    }
    findings = find_violations(doc)
    assert findings == [
        Finding("/summary/events/0/attrs", RULE_RAW_PATH, "key"),
        Finding("/summary/events/0/attrs", RULE_CONTENT_FIELD, "key"),
        Finding("/usage_statistics/commands", RULE_RAW_PATH, "key"),
    ]
    assert b"bob" not in msgspec.json.encode(findings)


def test_find_violations_content_key_rule_only_applies_inside_attrs() -> None:
    assert find_violations({"usage_statistics": {"features": {"text": 3}}}) == []
    assert find_violations({"x": {"attrs": {"text": 3}}}) == [Finding("/x/attrs", RULE_CONTENT_FIELD, "key")]


def test_find_violations_survives_very_deep_nesting() -> None:
    doc: object = "/etc/passwd"
    for _ in range(5000):
        doc = [doc]
    findings = find_violations(doc)
    assert findings == [Finding("/0" * 5000, RULE_RAW_PATH)]


def test_find_violations_uses_base_pointer_and_ignores_non_strings() -> None:
    assert find_violations({"n": 1, "f": 1.5, "b": True, "z": None}, "/root") == []
    assert find_violations(["~/x"], "/root") == [Finding("/root/0", RULE_RAW_PATH)]


def test_find_violations_on_strictly_decoded_package() -> None:
    rec = make_record(attrs={"n": 1})
    event, _, _ = sanitize(rec, index=0)
    package = {
        "schema_version": "1.0.0",
        "package_id": EVENT_ID,
        "export_timestamp": TS,
        "branchpy_version": "0.1.0",
        "platform": {"os": "Linux", "arch": "x86_64", "python": "3.11.7"},
        "summary": {"events": [msgspec.to_builtins(event)], "event_count": 1},
        "performance_metrics": {},
        "usage_statistics": {},
        "errors": [],
        "governance_id": SESSION,
        "correlation_ids": [],
    }
    decoded = package_decoder.decode(msgspec.json.encode(package))
    assert find_violations(msgspec.to_builtins(decoded)) == []
    package["summary"]["events"][0]["attrs"]["where"] = "/home/bob"
    decoded = package_decoder.decode(msgspec.json.encode(package))
    assert find_violations(msgspec.to_builtins(decoded)) == [
        Finding("/summary/events/0/attrs/where", RULE_RAW_PATH)
    ]


# --- bounded cost on hostile input ------------------------------------------------------

HOSTILE = {
    "slashes": "a/" * 8000,
    "dots": "a." * 8000,
    "tildes": "~" * 16000,
    "tilde-words": "~a" * 8000,
    "backslashes": "\\" * 16000,
    "percents": "%25" * 5000,
    "colons": "a:" * 8000,
    "email-ish": "a." * 8000 + "@",
    "quotes": "'\"" * 8000,
    "segments": ("x" * 50 + "/") * 300,
    "unicode": "é/ü" * 5000,
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_strings_are_checked_and_normalized_in_linear_time(text: str) -> None:
    """Quadratic backtracking took 4-8 s on these; linear patterns take milliseconds."""
    started = time.perf_counter()
    assert check_string(text) is not None
    assert check_string(text[:4000]) is not None
    normalize_error_message(text)
    hash_error_message(text)
    assert time.perf_counter() - started < 1.5


def test_megabytes_of_content_cost_a_bounded_scan() -> None:
    text = ("say hello to a/b " * 400_000) + "/home/bob/x"
    started = time.perf_counter()
    assert check_string(text) == RULE_TOO_LONG  # the path is past the scanned head; dropped either way
    assert check_string(text.replace("say", "s\nay", 1)) == RULE_MULTILINE
    assert HASH_RE.fullmatch(hash_error_message(text, "E"))
    assert time.perf_counter() - started < 1.5


def test_find_violations_accepts_structs_directly() -> None:
    event, _, _ = sanitize(make_record(attrs={"n": 1}), index=0)
    assert find_violations(event) == []
    dirty = msgspec.structs.replace(event, name="/home/bob/x", attrs={"n": 1, "content": "t"})
    assert find_violations(dirty, "/summary/events/0") == [
        Finding("/summary/events/0/name", RULE_RAW_PATH),
        Finding("/summary/events/0/attrs", RULE_CONTENT_FIELD, "key"),
    ]


# --- the public contract ------------------------------------------------------------------


def test_privacy_module_exposes_the_contract_names_and_values() -> None:
    from branchpy_telemetry.client import privacy

    assert (privacy.RULE_RAW_PATH, privacy.RULE_CONTENT_FIELD, privacy.RULE_MULTILINE) == (
        "raw_path",
        "content_field",
        "multiline",
    )
    assert (privacy.RULE_TOO_LONG, privacy.RULE_NESTED) == ("too_long", "nested_value")
    assert (privacy.RULE_EMAIL, privacy.RULE_SECRET_FIELD) == ("email_address", "secret_field")
    assert len(set(privacy.RULES)) == 7
    assert (privacy.MAX_STRING_LENGTH, privacy.REDACTED) == (200, "[redacted]")
    for name in (
        "contains_raw_path",
        "check_string",
        "is_content_key",
        "attr_key_rule",
        "Finding",
        "RedactionReport",
        "sanitize_event",
        "normalize_error_message",
        "hash_error_message",
        "find_violations",
    ):
        assert callable(getattr(privacy, name)), name
    with pytest.raises(AttributeError):
        privacy.no_such_name  # noqa: B018


@pytest.mark.parametrize("first", ["privacy", "redaction"])
def test_either_module_can_be_imported_first(first: str) -> None:
    code = (
        f"import branchpy_telemetry.client.{first}\n"
        "from branchpy_telemetry.client.privacy import sanitize_event, find_violations, RedactionReport\n"
        "from branchpy_telemetry.client.redaction import Finding\n"
        "print('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
