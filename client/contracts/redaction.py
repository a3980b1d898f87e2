"""The redaction report the exporter writes, and the server's `find_violations`.

A report and a finding name a JSON pointer (RFC 6901) and a rule — never the
removed value, and never the text of an offending key: a finding about a key
points at the object that holds it, with `location="key"`. What the exporter
removes is decided in `declared.py` (the catalog, then these rules).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from branchpy_telemetry.client.contracts.privacy import attr_key_rule, check_string
from branchpy_telemetry.client.contracts.schema import FREE_KEY_MAPPINGS, SCHEMA_FIELD_NAMES


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

    def count(self, rule: str) -> None:
        """Count a removal that has no place in the package (an event dropped whole)."""
        self.counts[rule] = self.counts.get(rule, 0) + 1

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


def find_violations(obj: object, pointer: str = "") -> list[Finding]:
    """Server-side validation of a decoded package (decoded JSON, builtins, or
    a Struct, which is converted first): every string value and
    every key at any depth must pass `check_string`; a key of any mapping named
    `attrs` that holds a text value must not name content or a secret
    (`attr_key_rule`). Findings never carry the offending text, and a pointer
    spells only the schema's own field names and list indices: a finding
    under a key the sender chose (an attrs key, a name in an aggregate table,
    an unknown field) points at the mapping that holds it. The value under an
    offending key is not descended into."""
    if isinstance(obj, msgspec.Struct):  # a TelemetryPackage or SanitizedEvent itself
        obj = msgspec.to_builtins(obj)
    findings: list[Finding] = []
    # (value, pointer, name of the key holding it, inside a key the sender chose: pointers stop growing)
    stack: list[tuple[object, str, str | None, bool]] = [(obj, pointer, None, False)]
    while stack:
        value, ptr, holder, frozen = stack.pop()
        if isinstance(value, str):
            rule = check_string(value)
            if rule is not None:
                findings.append(Finding(ptr, rule))
        elif isinstance(value, dict):
            children = []
            for key, child in value.items():
                key = key if isinstance(key, str) else str(key)
                rule = check_string(key)
                if rule is None and holder == "attrs" and isinstance(child, str) \
                        and (key_rule := attr_key_rule(key)) is not None:
                    findings.append(Finding(ptr, key_rule, "key"))
                elif rule is not None:
                    findings.append(Finding(ptr, rule, "key"))
                    continue
                spelled = not frozen and key in SCHEMA_FIELD_NAMES and holder not in FREE_KEY_MAPPINGS
                children.append((child, f"{ptr}/{escape_pointer_token(key)}" if spelled else ptr, key,
                                 not spelled))
            stack.extend(reversed(children))
        elif isinstance(value, (list, tuple)):
            stack.extend(reversed([(child, ptr if frozen else f"{ptr}/{i}", None, frozen)
                                   for i, child in enumerate(value)]))
    return findings
