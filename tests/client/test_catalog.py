"""The event catalog: the bundled one is valid and complete; a bad file is refused with
every problem named by its entry; each attribute type accepts exactly its values;
expiry follows an injected date."""

from __future__ import annotations

import math
from datetime import date

import msgspec
import pytest

from branchpy_telemetry.client.contracts.catalog import (
    BUNDLED_CATALOG,
    cached_catalog,
    describe_catalog,
    load_catalog,
    parse_catalog,
)
from branchpy_telemetry.client.contracts.errors import CatalogInvalidError

HEADER = 'format = 1\nid = "test"\nrevision = "1"\n[errors]\ncode_pattern = "^T-[0-9]{3}$"\n'


def event(name="run", category="command", expires="never", attrs="", **extra) -> str:
    lines = [f'[[event]]\ncategory = "{category}"\nname = "{name}"\ndescription = "A test event."',
             f'expires = "{expires}"\nowner = "tests"']
    lines += [f"{k} = {v}" for k, v in extra.items()]
    if attrs:
        lines.append("[event.attrs]\n" + attrs)
    return "\n".join(lines) + "\n"


def catalog_of(*events: str):
    return parse_catalog((HEADER + "".join(events)).encode())


def problems_of(text: str) -> list[dict]:
    with pytest.raises(CatalogInvalidError) as caught:
        parse_catalog(text.encode(), "bad.toml")
    assert caught.value.code == "catalog_invalid"
    return caught.value.details


def test_the_bundled_catalog_is_valid_and_every_event_is_described_owned_and_dated():
    catalog = load_catalog()
    assert catalog.id == "branchpy" and len(catalog.sha256) == 64 and catalog.source == str(BUNDLED_CATALOG)
    assert len(catalog.events) >= 20
    for declared in catalog.events.values():
        spec = declared.spec
        assert spec.description.strip() and spec.owner.strip()
        assert spec.expires == "never" or declared.expires is not None
    assert catalog.error_code_allowed("BP-E1042") and not catalog.error_code_allowed("E1042")


def test_a_catalog_lists_every_problem_with_its_entry():
    text = ('format = 2\nid = "Bad Id"\nrevision = ""\n[errors]\ncode_pattern = "BP-.*"\n'
            + event("Run It") + event("dup") + event("dup")
            + event("x", expires="someday")
            + event("y", attrs='password = { type = "pattern", regex = "^[a-z]+$" }\n'
                               'loose = { type = "pattern", regex = "[a-z]+" }\n'
                               'long = { type = "pattern", regex = "^' + "a" * 70 + '$" }\n'
                               'broken = { type = "pattern", regex = "^(a$" }\n'
                               'span = { type = "int", min = 5, max = 1 }\n'
                               'where = { type = "enum", values = ["/home/alice", "ok"] }\n'
                               'none = { type = "enum", values = [] }\n'
                               'BadKey = { type = "bool" }\n'))
    found = {(p["entry"], p["problem"].split(":")[0].split(" (")[0]) for p in problems_of(text)}
    entries = {entry for entry, _ in found}
    assert {"format", "id", "revision", "errors.code_pattern"} <= entries
    assert "event[0] command/Run It" in entries
    assert any(e == "event[2] command/dup" and p == "declared twice" for e, p in found)
    assert any(e == "event[3] command/x" and p.startswith("expires") for e, p in found)
    for attr in ("password", "loose", "long", "broken", "span", "where", "none", "BadKey"):
        assert f"event[4] command/y attr {attr}" in entries, attr


@pytest.mark.parametrize("text, entry", [
    (HEADER + event(attrs='files = { type = "integer" }\n'), "event[0] command/run attr files"),
    (HEADER + event(attrs='files = { type = "int", maximum = 3 }\n'), "event[0] command/run attr files"),
    (HEADER + event(colour="1"), "event[0] command/run"),
    (HEADER.replace('id = "test"', 'idd = "test"'), "catalog"),
    (HEADER + event(category="telemetry"), "event[0] telemetry/run"),
], ids=["unknown type", "unknown attr field", "unknown event key", "unknown top-level key", "category"])
def test_a_structural_mistake_names_its_entry(text, entry):
    assert problems_of(text)[0]["entry"] == entry


def test_not_toml_and_not_utf8_are_clear_errors():
    with pytest.raises(CatalogInvalidError, match="not valid TOML"):
        parse_catalog(b"format = = 1")
    with pytest.raises(CatalogInvalidError, match="not UTF-8"):
        parse_catalog(b"\xff\xfe")
    with pytest.raises(CatalogInvalidError, match="does not exist"):
        load_catalog("/nonexistent/catalog.toml")


ATTRS = """\
flag = { type = "bool" }
files = { type = "int", min = 0, max = 100 }
ratio = { type = "float", min = 0, max = 1 }
mode = { type = "enum", values = ["fast", "full"] }
engine = { type = "version" }
took = { type = "duration_ms" }
theme = { type = "pattern", regex = "^[a-z][a-z0-9/-]{0,30}$" }
"""


@pytest.mark.parametrize("key, good, bad", [
    ("flag", [True, False], [1, 0, "true", None, 1.0]),
    ("files", [0, 1, 100], [-1, 101, True, 1.5, "3", None, 2**70]),
    ("ratio", [0, 0.5, 1, 1.0], [-0.1, 1.01, math.nan, math.inf, True, "0.5", None]),
    ("mode", ["fast", "full"], ["FAST", "fast ", "slow", 1, None, True]),
    ("engine", ["1.2.3", "v2.0.0-rc.1", "8", "3.13.0b2", "0.4.dev3"],
     ["1.2.3.4", "10.0.0.12", "1.0-alice", "3.12.1+local.2", "415.555.0132", "01.2", "alice",
      "1.2/3", "", 3]),
    ("took", [0, 12.5, 10**12], [-1, 10**12 + 1, math.nan, True, "5"]),
    ("theme", ["dark", "solarized-light"], ["Dark", "a/b.txt", "dark/../etc/passwd.cfg", "x" * 40, 3]),
], ids=["bool", "int", "float", "enum", "version", "duration_ms", "pattern"])
def test_each_attribute_type_accepts_exactly_its_values(key, good, bad):
    check = catalog_of(event(attrs=ATTRS)).lookup("command", "run").checks[key]
    assert [check(v) for v in good] == [True] * len(good)
    assert [check(v) for v in bad] == [False] * len(bad)


def test_a_pattern_value_still_goes_through_the_privacy_rules():
    # the declared regex would let a path or a token through; the rules behind it do not
    check = catalog_of(event(attrs='ref = { type = "pattern", regex = "^[A-Za-z0-9_/.]{1,60}$" }\n')) \
        .lookup("command", "run").checks["ref"]
    assert check("main") and check("release_2026")
    assert not check("home/alice/thesis_draft.docx")
    assert not check("ghp_abcdefghijklmnopqrstuvwxyz0123456789")


def test_expiry_follows_the_date_given_not_the_clock():
    catalog = catalog_of(event("old", expires="2026-06-30"), event("forever"))
    old, forever = catalog.lookup("command", "old"), catalog.lookup("command", "forever")
    assert not old.expired(date(2026, 6, 30)) and old.expired(date(2026, 7, 1))
    assert not forever.expired(date(9999, 12, 31))
    described = describe_catalog(catalog, date(2026, 7, 1))
    assert [(e.name, e.expired) for e in described.events] == [("forever", False), ("old", True)]


def test_the_description_round_trips_as_json_and_hides_the_source_on_request():
    catalog = catalog_of(event(attrs=ATTRS))
    public = msgspec.to_builtins(describe_catalog(catalog, date(2026, 1, 1), with_source=False))
    assert "source" not in public
    attrs = public["events"][0]["attrs"]
    assert attrs["mode"] == {"type": "enum", "values": ["fast", "full"]}
    assert attrs["files"] == {"type": "int", "min": 0, "max": 100}


def test_the_cached_catalog_is_read_again_when_the_file_changes(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text(HEADER + event("one"))
    first = cached_catalog(file)
    assert cached_catalog(file) is first
    file.write_text(HEADER + event("one") + event("two"))
    assert set(cached_catalog(file).events) == {("command", "one"), ("command", "two")}


def test_an_event_declares_no_more_attrs_than_the_server_accepts():
    too_many = "".join(f"a{i} = {{ type = \"bool\" }}\n" for i in range(65))
    problems = problems_of(HEADER + event(attrs=too_many))
    assert any(p["problem"] == "at most 64 attrs per event" for p in problems)
