"""Property tests of the privacy rules and the catalog (hypothesis): a path inserted
anywhere as a token is flagged however it is disguised, the fast path never
disagrees with the full check, whatever sanitize_event emits passes the server's
checks (rules and fixed formats), and the exporter's fast proof for a record
agrees with sanitize_event (the block proof: tests/daemon/test_block_proof.py)."""

from __future__ import annotations

import os
from datetime import date
from urllib.parse import quote

import msgspec
from hypothesis import example, given, settings
from hypothesis import strategies as st

from branchpy_telemetry.client.contracts.catalog import load_catalog
from branchpy_telemetry.client.contracts.declared import ExportPolicy, is_clean_record, sanitize_event
from branchpy_telemetry.client.contracts.event import MAX_DURATION_MS, ErrorInfo, EventRecord
from branchpy_telemetry.client.contracts.privacy import _check_slow, check_string, contains_raw_path
from branchpy_telemetry.client.contracts.redaction import RedactionReport, find_violations
from branchpy_telemetry.client.contracts.schema import SanitizedEvent

CATALOG = load_catalog()
DECLARED = sorted(CATALOG.events)  # (category, name)
UUID = "0192f0e4-1a2b-7c3d-8e4f-0123456789ab"
TS = "2026-11-28T01:02:03.456Z"
event_decoder = msgspec.json.Decoder(SanitizedEvent)


def policy() -> ExportPolicy:
    return ExportPolicy(catalog=CATALOG, today=date(2026, 12, 1), id_key=b"property-test-key-0123456789abcd")

# BRANCHPY_HYPOTHESIS_EXAMPLES=5000 for a deeper search than the everyday run.
SETTINGS = settings(
    max_examples=int(os.environ.get("BRANCHPY_HYPOTHESIS_EXAMPLES", "150")), deadline=None, database=None
)

# a path segment: letters (any script), digits, `_ - .`; never a separator or space
SEGMENT = st.text(
    st.characters(categories=("Lu", "Ll", "Lo", "Nd"), include_characters="_-", max_codepoint=0x30FF),
    min_size=1,
    max_size=12,
)
DRIVE = st.sampled_from("CDEZcdez")
PATHS = st.one_of(
    st.builds(lambda a, b: f"/{a}/{b}", SEGMENT, SEGMENT),
    st.builds(lambda a: f"/{a}/", SEGMENT),
    st.builds(lambda a, b: f"~/{a}/{b}", SEGMENT, SEGMENT),
    st.builds(lambda u, a: f"~{u}/{a}", SEGMENT, SEGMENT),
    st.builds(lambda d, a: f"{d}:\\{a}", DRIVE, SEGMENT),
    st.builds(lambda d, a: f"{d}:/{a}", DRIVE, SEGMENT),
    st.builds(lambda h, s: f"\\\\{h}\\{s}", SEGMENT, SEGMENT),
    st.builds(lambda a: f"file:///{a}", SEGMENT),
    st.builds(
        lambda a, b, e: f"{a}/{b}.{e}", SEGMENT, SEGMENT, st.sampled_from(["rpy", "py", "txt", "png", "json"])
    ),
    st.builds(lambda a, b: f"{a}\\{b}.rpy", SEGMENT, SEGMENT),
)
BOUNDARY = st.sampled_from([" ", "\t", "(", ")", "'", '"', "=", ",", ";", "[", "]", "<", ">"])
ANY_TEXT = st.text(max_size=40)
SLASH_LOOKALIKES = ["\u2215", "\u2044", "\uff0f", "\u29f8", "\u2571"]
BACKSLASH_LOOKALIKES = ["\uff3c", "\u29f5", "\u2216", "\ufe68"]


@SETTINGS
@given(prefix=ANY_TEXT, left=BOUNDARY, path=PATHS, right=BOUNDARY, suffix=ANY_TEXT)
def test_any_inserted_path_token_is_flagged(
    prefix: str, left: str, path: str, right: str, suffix: str
) -> None:
    text = f"{prefix}{left}{path}{right}{suffix}"
    assert contains_raw_path(text)
    assert check_string(text) == "raw_path"


@SETTINGS
@given(path=PATHS, rounds=st.integers(1, 3))
def test_percent_encoded_path_is_flagged(path: str, rounds: int) -> None:
    for _ in range(rounds):
        path = quote(path, safe="")
    assert contains_raw_path(f"value={path}")


@SETTINGS
@given(path=PATHS, slash=st.sampled_from(SLASH_LOOKALIKES), backslash=st.sampled_from(BACKSLASH_LOOKALIKES))
def test_path_with_lookalike_separators_is_flagged(path: str, slash: str, backslash: str) -> None:
    disguised = path.replace("/", slash).replace("\\", backslash)
    assert contains_raw_path(f"at {disguised}")


@SETTINGS
@given(text=st.text(max_size=200))
def test_fast_path_agrees_with_the_full_check(text: str) -> None:
    assert check_string(text) == _check_slow.__wrapped__(text)


@SETTINGS
@given(text=st.text(min_size=201, max_size=400))
def test_over_long_string_always_breaks_a_rule(text: str) -> None:
    assert check_string(text) in ("raw_path", "email_address", "secret_value", "multiline", "too_long")


ASCII_WORD = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
                     min_size=1, max_size=10)
LOCAL_PARTS = st.builds(lambda a, sep, b: f"{a}{sep}{b}",
                        ASCII_WORD, st.sampled_from(["", ".", "_", "+", "-"]), ASCII_WORD)
EMAILS = st.builds(lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
                   LOCAL_PARTS,
                   st.lists(ASCII_WORD, min_size=1, max_size=3),
                   st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz"), min_size=2, max_size=6))


@SETTINGS
@given(prefix=ANY_TEXT, left=BOUNDARY, email=EMAILS, right=BOUNDARY, suffix=ANY_TEXT)
@example(prefix="", left=" ", email="jane.doe@example.com", right=" ", suffix="")
def test_any_inserted_email_address_is_flagged(
    prefix: str, left: str, email: str, right: str, suffix: str
) -> None:
    text = f"{prefix}{left}{email}{right}{suffix}"
    assert check_string(text) == ("raw_path" if contains_raw_path(text) else "email_address")


WORDS = st.sampled_from(["analyze", "ok", "error", "1.2.3", "a/b", "3/4", "text/plain", "BP-E1042", "ゲーム"])
TEXTS = st.one_of(WORDS, PATHS, st.text(max_size=30), st.just("x" * 250), st.just("a\nb"))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXTS)
ATTR_VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=2), st.dictionaries(TEXTS, SCALARS, max_size=2))
KEYS = st.one_of(st.sampled_from(["files", "mode", "content", "scriptText", "line", "flag_json", "a/b~c",
                                  "engine", "files_scanned", "nodes"]), TEXTS)
DECLARED_OR_NOT = st.one_of(st.sampled_from(DECLARED),
                            st.tuples(st.sampled_from(["command", "feature"]), TEXTS))


@st.composite
def records(draw) -> EventRecord:
    error = None
    if draw(st.booleans()):
        error = ErrorInfo(
            code=draw(st.one_of(st.none(), st.just("BP-E1042"), TEXTS)),
            type=draw(st.one_of(st.none(), st.sampled_from(["KeyError", "json.JSONDecodeError",
                                                            "thesis_draft.Error"]), TEXTS)),
            message=draw(st.one_of(st.none(), TEXTS)),
        )
    category, name = draw(DECLARED_OR_NOT)
    return EventRecord(
        event_id=draw(st.one_of(st.just(UUID), TEXTS)),
        ts=draw(st.one_of(st.just(TS), st.just("2026-11-28T02:02:03.4+01:00"))),
        category=category,
        source="cli",
        name=name,
        status=draw(st.one_of(st.none(), st.sampled_from(["ok", "error"]), TEXTS)),
        session_id=draw(st.one_of(st.none(), st.just("b3aa7efe4458a885ab9099a435a240ae"), TEXTS)),
        correlation_id=draw(st.one_of(st.none(), TEXTS)),
        error=error,
        attrs=draw(st.one_of(st.none(), st.dictionaries(KEYS, ATTR_VALUES, max_size=5))),
    )


@SETTINGS
@given(record=records(), index=st.integers(0, 10_000))
def test_whatever_sanitize_event_emits_passes_the_server_check(record: EventRecord, index: int) -> None:
    """Rules and fixed formats: the event decodes strictly (patterns) and breaks no rule."""
    report = RedactionReport()
    event = sanitize_event(record, index, report, policy())
    base = f"/summary/events/{index}"
    if event is not None:
        assert find_violations(msgspec.to_builtins(event), base) == []
        assert event_decoder.decode(msgspec.json.encode(event)) == event
        assert CATALOG.lookup(event.category, event.name) is not None
    assert all(f.pointer == base or f.pointer.startswith(base + "/") for f in report.findings)
    assert report.total == sum(report.counts.values())


# Mostly clean records with now and then one thing that is not: the shortcut
# the exporter takes for a clean record must give exactly sanitize_event's bytes.
SAFE_TEXT = st.text(st.sampled_from("abcXYZ019-_.+ ,'=()@#"), max_size=12)
RISKY_TEXT = st.one_of(
    SAFE_TEXT, SAFE_TEXT, SAFE_TEXT, PATHS, st.text(max_size=12),
    st.sampled_from(["C:x.rpy", "file:x", "a:b", "12:30", "x" * 201, "a\nb", 'q"uote', "é", "%2F", "&amp;",
                     "~u", "fast", "renpy-8.2"]),
)
RISKY_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(0, 5000), st.floats(),
                         RISKY_TEXT, st.sampled_from(["fast", "full"]), st.lists(st.integers(), max_size=1),
                         st.dictionaries(SAFE_TEXT, st.integers(), max_size=1))


@st.composite
def near_clean_records(draw) -> EventRecord:
    maybe = lambda strategy: draw(st.one_of(st.none(), strategy))  # noqa: E731
    error = None
    if draw(st.integers(0, 9)) == 0:
        error = ErrorInfo(code=maybe(SAFE_TEXT), type=maybe(SAFE_TEXT), message=maybe(RISKY_TEXT))
    category, name = draw(st.one_of(st.sampled_from(DECLARED), st.sampled_from(DECLARED),
                                    st.tuples(st.sampled_from(["command", "feature"]), RISKY_TEXT)))
    return EventRecord(
        v=draw(st.sampled_from([1, 1, 1, 2])),
        event_id=draw(st.one_of(st.just(UUID), st.just(UUID), RISKY_TEXT)),
        ts=draw(st.sampled_from([TS] * 4 + ["2026-11-28T01:02:03Z", "2026-11-28T01:02:03.456+01:00"])),
        category=category,
        source=draw(st.sampled_from(["cli", "extension"])),
        name=name,
        duration_ms=maybe(st.floats(min_value=0, max_value=MAX_DURATION_MS)),  # what decodes
        status=maybe(st.one_of(st.sampled_from(["ok", "error", "cancelled"]), RISKY_TEXT)),
        session_id=maybe(st.one_of(st.just("b3aa7efe4458a885ab9099a435a240ae"), st.just(UUID), RISKY_TEXT)),
        correlation_id=maybe(st.one_of(st.just(UUID), RISKY_TEXT)),
        error=error,
        attrs=maybe(st.dictionaries(st.one_of(KEYS, SAFE_TEXT), RISKY_VALUES, max_size=4)),
    )


@settings(max_examples=int(os.environ.get("BRANCHPY_HYPOTHESIS_EXAMPLES", "400")), deadline=None,
          database=None)
@given(record=near_clean_records())
@example(record=EventRecord(event_id=UUID, ts=TS, category="command", source="cli", name="analyze", attrs={}))
@example(record=EventRecord(v=2, event_id=UUID, ts=TS, category="command", source="cli", name="analyze"))
def test_a_record_proven_clean_encodes_exactly_as_its_sanitized_event(record: EventRecord) -> None:
    report = RedactionReport()
    sanitized = sanitize_event(record, 0, report, policy())
    if is_clean_record(record, policy()):
        assert msgspec.json.encode(record) == msgspec.json.encode(sanitized)
        assert report.total == 0


def test_realistic_records_are_proven_clean_and_risky_ones_are_not() -> None:
    base = dict(event_id=UUID, ts=TS, category="command", source="cli", name="graph.flow", duration_ms=12.5,
                status="ok", session_id="b3aa7efe4458a885ab9099a435a240ae", correlation_id=UUID,
                attrs={"flag_json": True, "files_scanned": 3, "mode": "fast", "nodes": 40})
    assert is_clean_record(EventRecord(**base), policy())
    assert is_clean_record(EventRecord(**{**base, "attrs": None, "status": None}), policy())
    for change in ({"attrs": {}}, {"v": 2}, {"error": ErrorInfo(code="E1")}, {"name": "C:x.rpy"},
                   {"attrs": {"file": "game/x.rpy"}}, {"attrs": {"content": "hi"}}, {"attrs": {"nodes": [1]}},
                   {"attrs": {"nodes": True}}, {"attrs": {"mode": "turbo"}}, {"status": "x" * 201},
                   {"ts": "2026-11-28 01:02"}, {"session_id": "a\nb"}, {"correlation_id": "c-1"},
                   {"category": "feature"}):
        assert not is_clean_record(EventRecord(**{**base, **change}), policy()), change
