"""The deny-list behind the catalog: the redaction report, content and credential keys,
error message templates and hashing, and the server's find_violations."""

from __future__ import annotations

import re
import time

import msgspec
import pytest

from branchpy_telemetry.client.contracts.error_hashing import hash_error_message, normalize_error_message
from branchpy_telemetry.client.contracts.privacy import (
    RULE_CONTENT_FIELD,
    RULE_MULTILINE,
    RULE_RAW_PATH,
    RULE_SECRET_FIELD,
    RULE_TOO_LONG,
    attr_key_rule,
    check_string,
    is_content_key,
)
from branchpy_telemetry.client.contracts.redaction import Finding, RedactionReport, find_violations
from branchpy_telemetry.client.contracts.schema import SanitizedEvent, package_decoder

EVENT_ID = "0192f0e4-1a2b-7c3d-8e4f-0123456789ab"
SESSION = "0192f0e4-1a2b-7c3d-8e4f-aaaaaaaaaaaa"
TS = "2026-11-28T01:02:03.456Z"
HASH_RE = re.compile(r"sha256:[0-9a-f]{64}")


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
               "secret.data", "ｔｏｋｅｎ",
               # plural, abbreviated and compound forms: a text value under any of these is a credential
               "tokens", "max_tokens", "pw", "passwd_hash", "passwd_file", "private_key_pem", "ssh_key",
               "jwt", "dsn", "database_url", "DATABASE_URL", "db_url", "mnemonic", "seed_phrase", "pin",
               "session_id", "auth", "creds", "pat", "connection_string", "keyfile", "client_cert"]
NOT_SECRET_KEYS = ["tokenizer", "hotkey", "key", "keys", "key_binding", "keyboard", "layout",
                   "cwd", "api_version", "files", "mode", "passing", "compass", "bypass_cache", "spinner",
                   "pattern", "author", "authority_level", "patch", "keymap"]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_attr_key_rule_names_credential_keys_secret_fields(key: str) -> None:
    assert attr_key_rule(key) == RULE_SECRET_FIELD
    assert not is_content_key(key)


@pytest.mark.parametrize("key", NOT_SECRET_KEYS)
def test_attr_key_rule_lets_keys_that_name_no_credential_pass(key: str) -> None:
    assert attr_key_rule(key) is None


def test_a_key_rule_applies_to_text_values_only_at_the_server() -> None:
    """A number cannot hold a credential's text: `max_tokens = 4096` passes, `max_tokens = "…"` does not."""
    assert find_violations({"attrs": {"max_tokens": 4096, "password_length": 12, "pin_set": True}}) == []
    found = find_violations({"attrs": {"password": "hunter2", "n": 2}})
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


def test_error_type_is_part_of_the_hash_when_it_may_leave() -> None:
    assert hash_error_message("boom", "ValueError") != hash_error_message("boom", "KeyError")
    assert hash_error_message("boom", None) == hash_error_message("boom", "")
    # a type from the user's own code is a file name: it never enters the hash either
    assert hash_error_message("boom", "thesis_draft.ParseError") == hash_error_message("boom", "alice.Error")


def test_hash_format_is_sha256_prefix_and_64_hex() -> None:
    for message in ["", "x", "a\nb" * 1000, "/home/bob", "é🎉"]:
        assert HASH_RE.fullmatch(hash_error_message(message, "E"))


def test_normalized_message_holds_no_path_number_or_id() -> None:
    text = normalize_error_message(
        "FileNotFoundError at /home/bob/x.rpy line 42 id 0192f0e4-1a2b-7c3d-8e4f-0123456789ab"
        " ptr 0xdead 'lit'"
    )
    assert text == "<w> at <path> line <n> id <uuid> <w> <hex> <str>"


@pytest.mark.parametrize("value", ["alice", "j.smith", "thesis_draft.docx", "db01.corp.example",
                                   "10.0.0.12", "feature/john-doe-login", "Xk9fQ2", "Müller", "o'brien"])
def test_a_guessed_value_cannot_be_confirmed_from_the_hash(value: str) -> None:
    """The template keeps no fragment of a value outside the shared vocabulary, so a hash
    cannot be tested against a guess: the same message with another value of its kind
    hashes the same."""
    message = f"permission denied for user {value} on host"
    template = normalize_error_message(message)
    fragments = {f.lower() for f in re.findall(r"[^\W_]{3,}", value)}
    assert not fragments & set(re.findall(r"[^\W_]{3,}", template.replace("<w>", " ")))
    other = "".join(chr(ord(c) + 1) if c.isalnum() and c not in "9zZ" else c for c in value)
    assert hash_error_message(message, "PermissionError") == \
        hash_error_message(message.replace(value, other), "PermissionError")


def test_different_user_names_in_one_failure_group_together() -> None:
    hashes = {hash_error_message(f"login failed for {name}", "PermissionError")
              for name in ("alice", "bob", "carol", "mallory_1", "ZZ Top")}
    assert len(hashes) == 1


# --- find_violations (server) --------------------------------------------------------------


def clean_event(**fields) -> SanitizedEvent:
    base = dict(event_id=EVENT_ID, ts=TS, category="command", source="cli", name="analyze", status="ok",
                attrs={"n": 1, "mode": "fast"})
    return SanitizedEvent(**{**base, **fields})


def test_find_violations_on_clean_package_dict_is_empty() -> None:
    package = {
        "schema_version": "1.0.0",
        "summary": {"events": [msgspec.to_builtins(clean_event())]},
        "usage_statistics": {"commands": {"analyze": 1, "telemetry.export": 2}},
        "errors": [{"error_hash": "sha256:" + "a" * 64, "first_seen": TS}],
    }
    assert find_violations(package) == []


def test_find_violations_spells_only_schema_fields_and_indices() -> None:
    """Under a key the sender chose (here: unknown fields), a finding points at the mapping."""
    doc = {"summary": {"events": [{"name": "/etc/passwd", "attrs": {"c/d": ["ok", "x\ny"]}}]},
           "alice_smith": {"deep": "z" * 201}}
    findings = find_violations(doc)
    assert findings == [
        Finding("/summary/events/0/name", RULE_RAW_PATH),
        Finding("/summary/events/0/attrs", RULE_MULTILINE),
        Finding("", RULE_TOO_LONG),
    ]
    assert b"alice" not in msgspec.json.encode(findings) and b"c~1d" not in msgspec.json.encode(findings)


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
    assert find_violations({"summary": {"attrs": {"text": "hi"}}}) == \
        [Finding("/summary/attrs", RULE_CONTENT_FIELD, "key")]


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
    event = clean_event(attrs={"n": 1})
    package = {
        "schema_version": "1.0.0",
        "package_id": EVENT_ID,
        "export_timestamp": TS,
        "branchpy_version": "0.1.0",
        "platform": {"os": "linux", "arch": "x86_64", "python": "3.11.7"},
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
        Finding("/summary/events/0/attrs", RULE_RAW_PATH)
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
    event = clean_event(attrs={"n": 1})
    assert find_violations(event) == []
    dirty = msgspec.structs.replace(event, name="/home/bob/x", attrs={"n": 1, "content": "t"})
    assert find_violations(dirty, "/summary/events/0") == [
        Finding("/summary/events/0/name", RULE_RAW_PATH),
        Finding("/summary/events/0/attrs", RULE_CONTENT_FIELD, "key"),
    ]


# --- the public contract ------------------------------------------------------------------


def test_privacy_module_exposes_the_contract_names_and_values() -> None:
    from branchpy_telemetry.client.contracts import privacy

    assert (privacy.RULE_RAW_PATH, privacy.RULE_CONTENT_FIELD, privacy.RULE_MULTILINE) == (
        "raw_path",
        "content_field",
        "multiline",
    )
    assert privacy.RULE_TOO_LONG == "too_long"
    assert (privacy.RULE_EMAIL, privacy.RULE_SECRET_FIELD) == ("email_address", "secret_field")
    assert privacy.RULE_SECRET_VALUE == "secret_value"
    assert len(set(privacy.RULES)) == 7
    assert privacy.MAX_STRING_LENGTH == 200
    for name in ("contains_raw_path", "check_string", "is_content_key", "attr_key_rule"):
        assert callable(getattr(privacy, name)), name
