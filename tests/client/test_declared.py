"""The catalog applied to events, at both ends: on export (`sanitize_event`) only
declared, current events with declared, valid attrs keep anything; fixed-format
fields keep only their form (other ids are replaced by keyed hashes); errors keep
a declared code, a public type and a template hash; the report counts every
removal and never names a removed value or key. On the server (`filter_package`)
what the server's catalog does not declare is dropped and counted."""

from __future__ import annotations

from datetime import date

import msgspec
import pytest

from branchpy_telemetry.client.contracts.catalog import (
    DROP_EXPIRED_EVENT,
    DROP_INVALID_VALUE,
    DROP_UNDECLARED_ATTR,
    DROP_UNDECLARED_EVENT,
    load_catalog,
    parse_catalog,
)
from branchpy_telemetry.client.contracts.declared import (
    RULE_KEYED_ID,
    ExportPolicy,
    filter_package,
    sanitize_event,
)
from branchpy_telemetry.client.contracts.error_hashing import hash_error_message
from branchpy_telemetry.client.contracts.event import ErrorInfo, EventRecord, event_decoder, event_encoder
from branchpy_telemetry.client.contracts.fixed_formats import is_ref_id, is_uuid, public_error_type
from branchpy_telemetry.client.contracts.privacy import RULE_RAW_PATH
from branchpy_telemetry.client.contracts.redaction import Finding, RedactionReport
from branchpy_telemetry.client.contracts.schema import SanitizedEvent

from ..backend.conftest import make_package

EVENT_ID = "0192f0e4-1a2b-7c3d-8e4f-0123456789ab"
SESSION = "b3aa7efe4458a885ab9099a435a240ae"
TS = "2026-11-28T01:02:03.456Z"
KEY = b"install-key-for-tests-0123456789"
TODAY = date(2026, 12, 1)


def make_record(**fields) -> EventRecord:
    """A record as the exporter sees it: encoded to a spool line and decoded back."""
    base = dict(event_id=EVENT_ID, ts=TS, category="command", source="cli", name="analyze")
    base.update(fields)
    return event_decoder.decode(event_encoder.encode(EventRecord(**base)))


def policy(catalog=None, today=TODAY, key=KEY) -> ExportPolicy:
    return ExportPolicy(catalog=catalog or load_catalog(), today=today, id_key=key)


def sanitize(record: EventRecord, index: int = 3, **kwargs) -> tuple[SanitizedEvent | None, RedactionReport]:
    report = RedactionReport()
    return sanitize_event(record, index, report, policy(**kwargs)), report


def run_catalog(attrs: str):
    """A one-event catalog (command/run) with these attribute declarations."""
    return parse_catalog(('format = 1\nid = "t"\nrevision = "1"\n[[event]]\ncategory = "command"\n'
                          'name = "run"\ndescription = "d"\nexpires = "never"\nowner = "o"\n[event.attrs]\n'
                          + attrs).encode())


def test_a_declared_event_with_valid_attrs_passes_unchanged_with_an_empty_report():
    attrs = {"flag_json": True, "files_scanned": 120, "mode": "fast", "engine": "renpy-8.2"}
    event, report = sanitize(make_record(duration_ms=412.5, status="ok", session_id=SESSION,
                                         correlation_id=EVENT_ID, attrs=attrs))
    assert event == SanitizedEvent(event_id=EVENT_ID, ts=TS, category="command", source="cli",
                                   name="analyze", duration_ms=412.5, status="ok", session_id=SESSION,
                                   correlation_id=EVENT_ID, attrs=attrs)
    assert report.counts == {} and report.findings == []


@pytest.mark.parametrize("category, name", [("command", "thesis_draft"), ("feature", "analyze"),
                                            ("command", "Analyze"), ("command", "/home/alice/x.rpy")])
def test_an_undeclared_event_is_dropped_whole_and_counted_without_its_name(category, name):
    checked = policy()
    report = RedactionReport()
    assert sanitize_event(make_record(category=category, name=name, attrs={"files": 1}), 0, report,
                          checked) is None
    assert report.counts == {DROP_UNDECLARED_EVENT: 1} and report.findings == []
    assert name not in msgspec.json.encode(report.to_dict()).decode()
    assert checked.left_out == {f"{category}/{name}": 1}  # for this machine's user only


def test_an_expired_event_is_no_longer_collected_from_the_day_after_its_date():
    record = make_record(category="feature", name="theme.change", attrs={"theme": "dark"})
    assert sanitize(record, today=date(2027, 6, 30))[0] is not None
    event, report = sanitize(record, today=date(2027, 7, 1))
    assert event is None and report.counts == {DROP_EXPIRED_EVENT: 1}


def test_attrs_keep_only_what_is_declared_and_valid():
    record = make_record(attrs={"files": 3, "mode": "turbo", "workers": 0, "flag_json": "yes",
                                "note_for_me": "call mom", "files_scanned": 12})
    event, report = sanitize(record, index=7)
    assert event.attrs == {"files": 3, "files_scanned": 12}
    assert sorted((f.pointer, f.rule, f.location) for f in report.findings) == [
        ("/summary/events/7/attrs", DROP_UNDECLARED_ATTR, "key"),  # the undeclared key is never spelled
        ("/summary/events/7/attrs/flag_json", DROP_INVALID_VALUE, "value"),
        ("/summary/events/7/attrs/mode", DROP_INVALID_VALUE, "value"),
        ("/summary/events/7/attrs/workers", DROP_INVALID_VALUE, "value"),
    ]
    assert b"note_for_me" not in msgspec.json.encode(report.to_dict())


def test_a_declared_text_attr_is_still_checked_by_the_rules():
    catalog = run_catalog('ref = { type = "pattern", regex = "^[a-z0-9/._]{1,60}$" }\n')
    event, report = sanitize(make_record(name="run", attrs={"ref": "home/alice/thesis.docx"}),
                             catalog=catalog)
    assert event.attrs == {}
    assert report.findings == [Finding("/summary/events/3/attrs/ref", RULE_RAW_PATH)]


def test_a_declared_number_is_kept_whatever_its_key_would_say_as_text():
    """`line = 42` declared as an int is a count, not content: the key rules apply to text only."""
    catalog = run_catalog('line = { type = "int", min = 0 }\nmax_tokens = { type = "int", min = 0 }\n')
    event, report = sanitize(make_record(name="run", attrs={"line": 42, "max_tokens": 4096}),
                             catalog=catalog)
    assert event.attrs == {"line": 42, "max_tokens": 4096} and report.total == 0


@pytest.mark.parametrize("field", ["session_id", "correlation_id"])
@pytest.mark.parametrize("value", ["vscode-1", "alice@laptop", "feature/john-doe", "S-1", "ABCDEF" * 6])
def test_a_caller_supplied_id_of_another_form_is_replaced_by_a_keyed_hash(field, value):
    event, report = sanitize(make_record(**{field: value}))
    replaced = getattr(event, field)
    assert is_ref_id(replaced) and value not in replaced
    assert report.findings == [Finding(f"/summary/events/3/{field}", RULE_KEYED_ID)]
    again, _ = sanitize(make_record(**{field: value}))
    assert getattr(again, field) == replaced  # the same id keeps grouping its events
    other_install, _ = sanitize(make_record(**{field: value}), key=b"another-install-key-0123456789ab")
    assert getattr(other_install, field) != replaced  # nobody without the key can test a guess


def test_an_event_id_of_another_form_becomes_a_stable_uuid():
    first, report = sanitize(make_record(event_id="my-event-1"))
    second, _ = sanitize(make_record(event_id="my-event-1"))
    assert is_uuid(first.event_id) and first.event_id == second.event_id
    assert report.counts == {RULE_KEYED_ID: 1}


def test_an_undeclared_status_is_dropped_and_an_offset_timestamp_is_normalized():
    event, report = sanitize(make_record(status="half-done by alice", ts="2026-11-28T02:02:03.456+01:00"))
    assert event.status is None and event.ts == TS
    assert report.findings == [Finding("/summary/events/3/status", DROP_INVALID_VALUE)]


@pytest.mark.parametrize("code, kept", [("BP-E1042", True), ("E1042", False), ("BP-E10425", False),
                                        ("/home/alice", False), ("ghp_abcdefghijklmnopqrstuvwxyz01", False)])
def test_an_error_code_leaves_only_when_the_catalog_pattern_matches(code, kept):
    event, report = sanitize(make_record(status="error", error=ErrorInfo(code=code, message="boom")))
    assert (event.error_code == code) is kept
    assert event.error_hash == hash_error_message("boom")
    assert report.counts == ({} if kept else {DROP_INVALID_VALUE: 1})


@pytest.mark.parametrize("error_type, public", [
    ("KeyError", "KeyError"), ("builtins.KeyError", "KeyError"), ("json.decoder.JSONDecodeError", None),
    ("json.JSONDecodeError", "json.JSONDecodeError"), ("requests.exceptions.ConnectionError",
                                                       "requests.exceptions.ConnectionError"),
    ("thesis_draft.ParseError", None), ("alice.Error", None), ("AKIAIOSFODNN7EXAMPLE", None),
    ("os.path.thesis_draft_docx", None), ("ValueError\n/home/x", None), ("", None), (None, None),
])
def test_an_error_type_leaves_only_when_it_names_public_code(error_type, public):
    """A type from the user's own modules is a file name; builtins, the standard library and the
    packages the catalog names are public knowledge."""
    modules = load_catalog().type_modules
    expected = public if error_type != "json.decoder.JSONDecodeError" else error_type
    assert public_error_type(error_type, modules) == expected


def test_a_message_never_leaves_only_the_hash_of_its_template():
    message = "cannot read /home/alice/game/script.rpy for alice.smith@studio.example: token ghp_x1y2"
    event, _ = sanitize(make_record(status="error", error=ErrorInfo(type="OSError", message=message)))
    wire = msgspec.json.encode(event)
    for fragment in (b"alice", b"script", b"studio", b"ghp_"):
        assert fragment not in wire
    assert event.error_hash == hash_error_message(message, "OSError")


def test_the_server_keeps_only_what_its_catalog_declares_and_counts_the_rest():
    events = [
        SanitizedEvent(event_id=EVENT_ID, ts=TS, category="command", source="cli", name="analyze",
                       attrs={"files": 2, "extra": True}),
        SanitizedEvent(event_id=EVENT_ID[:-1] + "c", ts=TS, category="command", source="cli",
                       name="newer-command"),
        SanitizedEvent(event_id=EVENT_ID[:-1] + "d", ts=TS, category="command", source="cli", name="lint",
                       error_code="E-OTHER", attrs={"rules": -5}),
        SanitizedEvent(event_id=EVENT_ID[:-1] + "e", ts=TS, category="feature", source="cli",
                       name="theme.change", attrs={"theme": "dark"}),
    ]


    package = make_package(events=events)
    kept, dropped = filter_package(package, load_catalog(), date(2027, 7, 1))
    assert [e.name for e in kept.summary.events] == ["analyze", "lint"]
    assert kept.summary.events[0].attrs == {"files": 2}
    assert kept.summary.events[1].attrs == {} and kept.summary.events[1].error_code is None
    assert dropped == {DROP_UNDECLARED_ATTR: 1, DROP_UNDECLARED_EVENT: 1, DROP_INVALID_VALUE: 2,
                       DROP_EXPIRED_EVENT: 1}
    assert kept.summary.event_count == 2


def test_the_server_returns_the_same_package_when_nothing_is_dropped():


    package = make_package(events=[SanitizedEvent(event_id=EVENT_ID, ts=TS, category="command", source="cli",
                                                  name="analyze", attrs={"files": 2})])
    kept, dropped = filter_package(package, load_catalog(), TODAY)
    assert kept is package and dropped == {}


@pytest.mark.parametrize("os_name, kept", [("linux", True), ("darwin", True), ("windows", True),
                                           ("jmartinez", False), ("tkimura", False)])
def test_platform_os_is_one_of_the_known_families(os_name, kept):
    import re

    from branchpy_telemetry.client.contracts.fixed_formats import OS_REGEX

    assert (re.fullmatch(OS_REGEX, os_name) is not None) is kept
