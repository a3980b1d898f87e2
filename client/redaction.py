"""Applying the privacy rules (DESIGN §7): the client's `sanitize_event` with
its redaction report, and the server's `find_violations`.

A report and a finding name a JSON pointer (RFC 6901) and a rule — never the
removed value, and never the text of an offending key: a finding about a key
points at the object that holds it, with `location="key"`.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from .error_hashing import hash_error_message
from .event import EventRecord
from .privacy import (
    MAX_STRING_LENGTH,
    REDACTED,
    RULE_NESTED,
    attr_key_rule,
    check_string,
)
from .schema import SanitizedEvent


class Finding(msgspec.Struct, frozen=True):
    pointer: str
    rule: str
    location: Literal["value", "key"] = "value"


class RedactionReport:
    """Counts per rule and the findings (pointer + rule). Never stores removed values.

    At most `max_findings` findings are kept so a huge export stays in bounded
    memory; counts and `total` always cover everything.
    """

    def __init__(self, max_findings: int = 10_000) -> None:
        self.counts: dict[str, int] = {}
        self.findings: list[Finding] = []
        self.max_findings = max_findings
        self.omitted = 0

    def add(self, pointer: str, rule: str, location: str = "value") -> None:
        self.counts[rule] = self.counts.get(rule, 0) + 1
        if len(self.findings) < self.max_findings:
            self.findings.append(Finding(pointer, rule, location))  # type: ignore[arg-type]
        else:
            self.omitted += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict:
        return {
            "counts": dict(sorted(self.counts.items())),
            "findings": [msgspec.structs.asdict(f) for f in self.findings],
            "total": self.total,
            "findings_omitted": self.omitted,
        }


def escape_pointer_token(token: str) -> str:
    """RFC 6901: `~` -> `~0`, `/` -> `~1`."""
    return token.replace("~", "~0").replace("/", "~1")


_SCALARS = (int, float, bool, type(None))


def _clean_structural(value: str | None, pointer: str, report: RedactionReport) -> str | None:
    if value is None:
        return None
    rule = check_string(value)
    if rule is None:
        return value
    report.add(pointer, rule)
    return REDACTED


def _sanitize_attrs(attrs: dict[str, Any], base: str, report: RedactionReport) -> dict:
    kept: dict[str, Any] = {}
    attrs_ptr = base + "/attrs"
    keys_pass = _keys_pass(tuple(attrs))
    for key, value in attrs.items():
        if not keys_pass:
            if type(key) is not str:  # cannot come from JSON; be safe in-process
                report.add(attrs_ptr, RULE_NESTED, "key")
                continue
            rule = check_string(key) or attr_key_rule(key)
            if rule is not None:
                report.add(attrs_ptr, rule, "key")
                continue
        if type(value) is str:
            rule = check_string(value)
            if rule is None:
                kept[key] = value
                continue
        elif isinstance(value, _SCALARS):
            kept[key] = value
            continue
        else:
            rule = RULE_NESTED
        report.add(f"{attrs_ptr}/{escape_pointer_token(key)}", rule)
    return kept


# Fast path: one C-level pass proves a whole event clean. ASCII text with no
# separator, `~`, `%`, `&`, `@`, `:` or newline cannot hold a path, an e-mail
# address or content, and joined with single spaces no rule can straddle two
# strings. The timestamp (which has colons) passes when it has the canonical
# wire shape.
# printable ASCII except `/ \\ ~ % & @ :` -> "a"; everything else -> "!"
_FAST_TABLE = bytes(97 if 0x20 <= c < 0x7F and chr(c) not in "/\\~%&@:" else 33 for c in range(256))
_DIGITS_TO_ZERO = bytes.maketrans(b"0123456789", b"0000000000")
_CANONICAL_TS = b"0000-00-00T00:00:00.000Z"
_SCALAR_TYPES = frozenset({int, float, bool, type(None)})


_KEYS_PASSED: dict[tuple, bool] = {}  # attr-key tuples known clean; bounded


def _keys_pass(keys: tuple) -> bool:
    """True when every attr key is a clean string and none names content."""
    if keys in _KEYS_PASSED:
        return True
    if not all(type(k) is str and check_string(k) is None and attr_key_rule(k) is None for k in keys):
        return False
    if len(keys) <= 16:  # clean keys are <= 200 chars: at most ~3 MB cached
        if len(_KEYS_PASSED) >= 1024:
            _KEYS_PASSED.clear()
        _KEYS_PASSED[keys] = True
    return True


def _texts_pass(texts: list[str]) -> bool:
    """One C-level pass over the joined strings (see the fast-path note above)."""
    joined = " ".join(texts)
    return (
        joined.isascii()
        and joined.encode().translate(_FAST_TABLE).isalpha()
        and (len(joined) <= MAX_STRING_LENGTH or max(map(len, texts)) <= MAX_STRING_LENGTH)
    )


def _ts_passes(ts: str) -> bool:
    if ts.isascii() and ts.encode().translate(_DIGITS_TO_ZERO) == _CANONICAL_TS:
        return True
    return check_string(ts) is None


def is_clean_record(record: EventRecord) -> bool:
    """True when `sanitize_event(record, ...)` would return the record's own
    fields unchanged with an empty report (the fast path below) and the record
    has no error, `v` 1, a timestamp in the wire form (`2026-11-28T01:02:03.456Z`),
    and attrs that are absent or not empty: then
    msgspec's encoding of the record itself is byte for byte the encoding of
    its SanitizedEvent, so the exporter encodes the record as it is.
    (`v` and `error` are left out of a clean event's JSON by omit_defaults;
    an empty attrs object would be written by an EventRecord, not by a
    SanitizedEvent.)"""
    v = record.v
    if record.error is not None or v != 1 or type(v) is not int:
        return False
    texts = [record.event_id, record.name, record.status or "", record.session_id or "",
             record.correlation_id or ""]
    attrs = record.attrs
    if attrs is not None:
        if not attrs:
            return False
        keys = tuple(attrs)
        if keys not in _KEYS_PASSED and not _keys_pass(keys):
            return False
        for value in attrs.values():
            kind = type(value)
            if kind is str:
                texts.append(value)
            elif kind not in _SCALAR_TYPES:
                return False
    joined = " ".join(texts)
    ts = record.ts
    return (
        joined.isascii()
        and joined.encode().translate(_FAST_TABLE).isalpha()
        and (len(joined) <= MAX_STRING_LENGTH or max(map(len, texts)) <= MAX_STRING_LENGTH)
        and ts.isascii() and ts.encode().translate(_DIGITS_TO_ZERO) == _CANONICAL_TS
    )


def sanitize_event(record: EventRecord, index: int, report: RedactionReport) -> SanitizedEvent:
    """Map an EventRecord to the SanitizedEvent that may leave the machine.

    Structural strings that break a rule become `[redacted]`; attrs that break
    a rule (key or value) or are not scalars are dropped; the error message is
    replaced by its normalized hash. Every change is recorded in `report`.
    A clean event's attrs dict is passed through, not copied.
    """
    err = record.error
    attrs = record.attrs
    error_code = error_hash = None
    if err is not None:
        error_code = err.code
        if err.message is not None or err.type is not None:
            error_hash = hash_error_message(err.message or "", err.type)
    texts = [record.event_id, record.name, record.status or "", record.session_id or "",
             record.correlation_id or "", error_code or ""]

    # Common case, inlined: the whole event is clean in one C-level pass.
    clean = True
    if attrs:
        if tuple(attrs) in _KEYS_PASSED or _keys_pass(tuple(attrs)):
            for value in attrs.values():
                kind = type(value)
                if kind is str:
                    texts.append(value)
                elif kind not in _SCALAR_TYPES:
                    clean = False
                    break
        else:
            clean = False
    if clean:
        joined = " ".join(texts)
        ts = record.ts
        if (
            joined.isascii()
            and joined.encode().translate(_FAST_TABLE).isalpha()
            and (len(joined) <= MAX_STRING_LENGTH or max(map(len, texts)) <= MAX_STRING_LENGTH)
            and ((ts.isascii() and ts.encode().translate(_DIGITS_TO_ZERO) == _CANONICAL_TS)
                 or check_string(ts) is None)
        ):
            return SanitizedEvent(
                event_id=record.event_id, ts=ts, category=record.category, source=record.source,
                name=record.name, duration_ms=record.duration_ms, status=record.status,
                session_id=record.session_id, correlation_id=record.correlation_id,
                error_code=error_code, error_hash=error_hash, attrs=attrs or {},
            )
    return _sanitize_slowly(record, index, report, error_code, error_hash)


def _sanitize_slowly(record: EventRecord, index: int, report: RedactionReport,
                     error_code: str | None, error_hash: str | None) -> SanitizedEvent:
    """Field by field, in document order, recording a finding for each change."""
    base = f"/summary/events/{index}"
    structural = [record.event_id, record.name, record.status or "", record.session_id or "",
                  record.correlation_id or "", error_code or ""]
    if _texts_pass(structural) and _ts_passes(record.ts):
        fields = (record.event_id, record.ts, record.name, record.status, record.session_id,
                  record.correlation_id, error_code)
    else:
        fields = tuple(
            _clean_structural(value, f"{base}/{name}", report)
            for name, value in (("event_id", record.event_id), ("ts", record.ts), ("name", record.name),
                                ("status", record.status), ("session_id", record.session_id),
                                ("correlation_id", record.correlation_id), ("error_code", error_code))
        )
    event_id, ts, name, status, session_id, correlation_id, error_code = fields
    return SanitizedEvent(
        event_id=event_id, ts=ts, category=record.category, source=record.source, name=name,
        duration_ms=record.duration_ms, status=status, session_id=session_id, correlation_id=correlation_id,
        error_code=error_code, error_hash=error_hash,
        attrs=_sanitize_attrs(record.attrs, base, report) if record.attrs else {},
    )


def find_violations(obj: object, pointer: str = "") -> list[Finding]:
    """Server-side validation of a decoded package (decoded JSON, builtins, or
    a Struct, which is converted first): every string value and
    every key at any depth must pass `check_string`; keys of any mapping named
    `attrs` must not name content or a secret (`attr_key_rule`). Findings never carry the offending text;
    the value under an offending key is not descended into (its pointer would
    have to spell the key)."""
    if isinstance(obj, msgspec.Struct):  # a TelemetryPackage or SanitizedEvent itself
        obj = msgspec.to_builtins(obj)
    findings: list[Finding] = []
    # (value, pointer, name of the key holding it)
    stack: list[tuple[object, str, str | None]] = [(obj, pointer, None)]
    while stack:
        value, ptr, holder = stack.pop()
        if isinstance(value, str):
            rule = check_string(value)
            if rule is not None:
                findings.append(Finding(ptr, rule))
        elif isinstance(value, dict):
            children = []
            for key, child in value.items():
                key = key if isinstance(key, str) else str(key)
                rule = check_string(key)
                if rule is None and holder == "attrs" and (key_rule := attr_key_rule(key)) is not None:
                    findings.append(Finding(ptr, key_rule, "key"))
                elif rule is not None:
                    findings.append(Finding(ptr, rule, "key"))
                    continue
                children.append((child, f"{ptr}/{escape_pointer_token(key)}", key))
            stack.extend(reversed(children))
        elif isinstance(value, (list, tuple)):
            stack.extend(reversed([(child, f"{ptr}/{i}", None) for i, child in enumerate(value)]))
    return findings
