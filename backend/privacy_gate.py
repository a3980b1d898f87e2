"""The server's privacy check (422 `privacy_violation`), fast on the common, clean path.

The rules are the client's (`check_string`, `attr_key_rule`; never
re-implemented here) and the authority on *where* a package breaks them is
`find_violations`. That walk builds a JSON pointer for every value it
visits, which costs about a second on a 5 MB package. Nearly every upload
is clean, so the gate first answers "clean?" cheaply and only when that
answer is not a sure yes runs `find_violations` for the pointers.

Two ways to answer "clean?":

- `find_package_violations(raw)`: on decoded JSON (builtins). Collects each
  distinct string (values and keys) and each distinct key of an `attrs`
  mapping, checks those once with the same rule functions.
- `find_upload_violations(body, package)`: on the exact body bytes of an
  upload that already decoded into a `TelemetryPackage` (schema valid),
  without building the builtins tree. Every string the walk would check is
  a JSON string token of the body, so:
    1. strings: when the body holds only SAFE_BYTES, no letter right before
       a `:` and no run of more than MAX_STRING_LENGTH bytes after a `"`,
       every string token is plain ASCII from that alphabet and short, and
       such strings pass `check_string` (pinned by a property test in
       tests/backend/test_api_privacy_gate.py: if the rules ever flag such a
       string, that test fails). Otherwise each distinct string token is
       checked with `check_string` (bodies without backslashes: tokens are
       the odd pieces of `body.split('"')`; escapes send the body to the
       builtins path).
    2. `attrs` keys: the keys of every event's `attrs` that hold text are
       checked with `attr_key_rule`. That covers every mapping held by an
       `"attrs"` key only when the body has exactly one `"attrs"` token per
       event with a non-empty `attrs`; any other count (an "attrs" elsewhere,
       a repeated key) sends the body to the builtins path.
    3. credentials by shape (`secret_value_rule`), which no byte class can
       see: checked on every distinct text of the decoded package a sender
       chooses (names, codes, types, attrs keys and text values, the keys of
       the aggregate tables, the catalog's id and revision); every other field
       has a fixed format, already checked while decoding, that no secret
       shape fits (ids and hashes are lower-case hex, versions numbers).
  Either way the answer equals `find_violations` of the decoded body
  (tests/backend/test_api_privacy_gate.py checks both functions).
"""

from __future__ import annotations

import msgspec

from branchpy_telemetry.client.contracts.credential_shapes import MIN_SECRET_LENGTH, secret_value_rule
from branchpy_telemetry.client.contracts.privacy import (
    MAX_STRING_LENGTH,
    TRIGGER_CHARS,
    attr_key_rule,
    check_string,
)
from branchpy_telemetry.client.contracts.redaction import find_violations
from branchpy_telemetry.client.contracts.schema import TelemetryPackage

# Bytes a clean body may consist of: printable ASCII except the rules' trigger characters
# (`privacy.TRIGGER_CHARS`, the one definition every fast path derives from), plus JSON's
# whitespace; a `:` right after a letter is checked separately (`a:` below).
SAFE_BYTES = bytes(b for b in range(0x20, 0x7F) if chr(b) not in TRIGGER_CHARS) + b"\t\n\r"
# One translation classifies every byte in C: letter -> "a", '"' and ':' stay, other safe -> "x",
# anything else -> "!". A second maps all but '"' to "x": a run of MAX_STRING_LENGTH + 1 "x"
# is a token too long (or structure that long, which only costs the exact path).
_CLASSES = bytes((b if b in b'":' else ord("a") if chr(b).isalpha() else ord("x")) if b in SAFE_BYTES
                 else ord("!") for b in range(256))
_QUOTE_OR_X = bytes(b if b == ord('"') else ord("x") for b in range(256))
_LONG_RUN = b"x" * (MAX_STRING_LENGTH + 1)
_ATTRS_TOKEN = b'"attrs"'


def find_package_violations(raw: object) -> list:
    """`find_violations(raw)`, answered without the pointer walk when clean."""
    if _looks_clean(raw):
        return []
    return find_violations(raw)


def find_upload_violations(body: bytes, package: TelemetryPackage) -> list:
    """`find_violations` of the decoded `body`, which decoded into `package` (schema valid)."""
    if _strings_clean(body) and _attrs_keys_clean(body, package) and _no_secret_shapes(package):
        return []
    return find_package_violations(msgspec.json.decode(body))


def body_is_plain(body: bytes) -> bool:
    """True when every string token of the JSON `body` passes `check_string` for sure:
    safe bytes only, no letter before a `:`, no token longer than MAX_STRING_LENGTH."""
    classes = body.translate(_CLASSES)
    return b"!" not in classes and b"a:" not in classes and _LONG_RUN not in classes.translate(_QUOTE_OR_X)


def _strings_clean(body: bytes) -> bool:
    if body_is_plain(body):
        return True
    if b"\\" in body:  # escapes: a token is not its value; let the builtins path decide
        return False
    tokens = set(body.decode("utf-8").split('"')[1::2])
    return all(check_string(text) is None for text in tokens)


def _attrs_keys_clean(body: bytes, package: TelemetryPackage) -> bool:
    attrs = [event.attrs for event in package.summary.events]
    if body.count(_ATTRS_TOKEN) != len(attrs) - attrs.count({}):  # one "attrs" per non-empty mapping
        return False
    text_keys = {key for mapping in attrs for key, value in mapping.items() if type(value) is str}
    return not any(attr_key_rule(key) is not None for key in text_keys)


def _no_secret_shapes(package: TelemetryPackage) -> bool:
    """No credential-shaped text among the strings a sender chooses (see 3. above)."""
    texts: set[str] = set()
    for event in package.summary.events:
        texts.add(event.name)
        if event.error_code is not None:
            texts.add(event.error_code)
        if event.attrs:
            texts.update(event.attrs)
            texts.update(v for v in event.attrs.values() if type(v) is str)
    usage = package.usage_statistics
    for table in (package.performance_metrics, package.summary.redactions, usage.commands, usage.features,
                  usage.categories, usage.sources, usage.statuses):
        texts.update(table)
    for sample in package.errors:
        texts.update(t for t in (sample.name, sample.error_code, sample.error_type) if t is not None)
    catalog = package.summary.catalog  # fixed formats, but wide enough to fit a token's shape
    if catalog is not None:
        texts.update((catalog.id, catalog.revision))
    return not any(len(t) >= MIN_SECRET_LENGTH and secret_value_rule(t) is not None for t in texts)


def _looks_clean(raw: object) -> bool:
    strings: set = set()
    attrs_keys: set = set()
    add = strings.add
    stack: list[tuple[object, bool]] = [(raw, False)]  # (value, is it the value of an "attrs" key)
    push = stack.append
    while stack:
        value, under_attrs = stack.pop()
        kind = type(value)
        if kind is dict:
            if under_attrs:
                attrs_keys.update(key for key, child in value.items() if type(child) is str)
            for key, child in value.items():
                add(key)
                child_kind = type(child)
                if child_kind is str:
                    add(child)
                elif child_kind is dict or child_kind is list:
                    push((child, key == "attrs"))
        elif kind is list:
            for child in value:
                child_kind = type(child)
                if child_kind is str:
                    add(child)
                elif child_kind is dict or child_kind is list:
                    push((child, False))
        elif kind is str:
            add(value)
        elif isinstance(value, (dict, list, str)):  # subclasses: not from a JSON decoder
            return False
    for text in strings:
        if check_string(text if type(text) is str else str(text)) is not None:
            return False
    return not any(attr_key_rule(key if type(key) is str else str(key)) is not None for key in attrs_keys)
