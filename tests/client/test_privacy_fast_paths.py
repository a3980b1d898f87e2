"""Every fast path refuses every rule's canonical violators.

The characters that send a string to the rules are defined once
(`privacy.TRIGGER_CHARS`, plus a letter before `:` and anything outside
printable ASCII); credentials by shape have their own detector that every
path runs. The fast paths: `check_string`'s own shortcut, the server's byte
gate (`body_is_plain`, then the credential check of a decoded package), and the
exporter's proofs (`is_clean_record` / `dirty_positions`), which let a text
value through only as a declared `pattern` value that passed `check_string`.
"""

from __future__ import annotations

from datetime import date

import msgspec
import pytest

from branchpy_telemetry.backend.privacy_gate import SAFE_BYTES, body_is_plain, find_upload_violations
from branchpy_telemetry.client.contracts.catalog import parse_catalog
from branchpy_telemetry.client.contracts.declared import ExportPolicy, is_clean_record
from branchpy_telemetry.client.contracts.event import EventRecord
from branchpy_telemetry.client.contracts.privacy import (
    _SUSPICIOUS,
    TRIGGER_AFTER_LETTER,
    TRIGGER_CHARS,
    check_string,
)
from branchpy_telemetry.client.contracts.schema import decode_package
from branchpy_telemetry.daemon.export.block_proof import dirty_positions

from ..backend.conftest import make_package

CANONICAL_VIOLATORS = {
    "raw_path": ["/etc/passwd", "~/notes.txt", "C:\\Users\\bob", "c:/x/y", "\\\\host\\share", "file:x",
                 "https://host.example/x", "game/script.rpy", "..\\x.rpy", "%2Fetc%2Fpasswd",
                 "%252Fetc%252Fpasswd", "%u002Fetc%u002Fpasswd", "&#47;etc&#47;passwd", "／etc／passwd",
                 "$HOME/x"],
    "email_address": ["alice@example.com", "alice%40example.com", "alice＠example.com",
                      "alice&#64;example.com"],
    "multiline": ["a\nb", "a\rb", "a\u2028b", "a%0Ab"],
    "too_long": ["x" * 201],
    "secret_value": ["ghp_abcdefghijklmnopqrstuvwxyz0123456789", "glpat-abcdefghij1234567890",
                     "xoxb-1234567890-abcdefghij", "AKIAIOSFODNN7EXAMPLE",
                     "AIzaSyA1234567890abcdefghijklmnopqrstu",
                     "sk_live_abcdefghijklmnop1234", "npm_abcdefghijklmnopqrstuvwxyz0123456789",
                     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "-----BEGIN RSA PRIVATE KEY-----",
                     "password=hunter2x", "bpt_1f55c424_VgdDcVDCLcpIP7sK4ACPuHCOoxdD",
                     "a8Fk29dkLmQ0pZ7xYt3Rq"],
}
ALL = [(rule, text) for rule, texts in CANONICAL_VIOLATORS.items() for text in texts]
IDS = [f"{rule}-{i}" for i, (rule, _) in enumerate(ALL)]


@pytest.mark.parametrize("rule, text", ALL, ids=IDS)
def test_check_string_names_the_rule(rule, text):
    assert check_string(text) == rule


@pytest.mark.parametrize("rule, text", [(r, t) for r, t in ALL if r != "secret_value"],
                         ids=[i for i, (r, _) in zip(IDS, ALL, strict=True) if r != "secret_value"])
def test_the_character_trigger_fires_on_every_character_rule_violator(rule, text):
    assert _SUSPICIOUS.search(text) is not None or len(text) > 200


@pytest.mark.parametrize("rule, text", ALL, ids=IDS)
def test_the_servers_byte_gate_refuses_every_violator_in_a_free_text_field(rule, text):
    package = msgspec.to_builtins(make_package(3, seed=71))
    package["summary"]["events"][1]["attrs"]["files"] = text  # a text where a number is declared
    body = msgspec.json.encode(package)
    if rule != "secret_value":
        assert not body_is_plain(body)
    found = find_upload_violations(body, decode_package(body))
    assert [(f.pointer, f.rule) for f in found] == [("/summary/events/1/attrs", rule)]


@pytest.mark.parametrize("rule, text", ALL, ids=IDS)
def test_the_exporters_proofs_never_pass_a_violator_in_a_declared_text_attr(rule, text):
    catalog = parse_catalog(b'format = 1\nid = "t"\nrevision = "1"\n[[event]]\ncategory = "command"\n'
                            b'name = "run"\ndescription = "d"\nexpires = "never"\nowner = "o"\n'
                            b'[event.attrs]\nref = { type = "pattern", regex = "^.{1,250}$" }\n')
    policy = ExportPolicy(catalog=catalog, today=date(2026, 12, 1), id_key=b"k" * 32)
    record = EventRecord(event_id="0192f0e4-1a2b-7c3d-8e4f-0123456789ab", ts="2026-11-28T01:02:03.456Z",
                         category="command", source="cli", name="run", attrs={"ref": text})
    assert not is_clean_record(record, policy)
    assert dirty_positions([record, record], policy) == [0, 1]


def test_the_trigger_definition_is_the_one_every_path_uses():
    assert set(TRIGGER_CHARS) == set("/\\~%&@") and TRIGGER_AFTER_LETTER == ":"
    assert not set(TRIGGER_CHARS) & set(SAFE_BYTES.decode())
