"""The event catalog: the only events, attributes and values that may leave the machine.

An app declares what it collects in a TOML file (format 1), the way Mozilla
Glean's `metrics.yaml` and VS Code's telemetry classifications do:

    format = 1
    id = "branchpy"
    revision = "2026.12.1"
    [errors]
    code_pattern = "^BP-E[0-9]{4}$"        # error codes that may leave; others dropped
    [[event]]
    category = "command"
    name = "analyze"
    description = "A full analysis of the open project."
    expires = "2027-12-31"                 # a date, or "never"
    owner = "core-team"
    [event.attrs]
    files = { type = "int", min = 0, max = 1000000 }
    mode = { type = "enum", values = ["fast", "full"] }

Both ends use it: the exporter drops what it does not declare before anything
is written, and the server drops it again before anything is stored
(`apply_catalog` in `declared.py`). `load_catalog` validates a file whole and
reports every problem with the entry it is in (`catalog_invalid`).
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import msgspec

from branchpy_telemetry.client.contracts.credential_shapes import secret_value_rule
from branchpy_telemetry.client.contracts.errors import CatalogInvalidError
from branchpy_telemetry.client.contracts.event import CATEGORIES, MAX_DURATION_MS, Category
from branchpy_telemetry.client.contracts.fixed_formats import (
    CATALOG_ID_REGEX,
    CATALOG_REVISION_REGEX,
    is_version,
)
from branchpy_telemetry.client.contracts.limits import MAX_ATTR_KEY_LENGTH, MAX_ATTRS_PER_EVENT
from branchpy_telemetry.client.contracts.privacy import MAX_STRING_LENGTH, attr_key_rule, check_string

CATALOG_FORMAT = 1
BUNDLED_CATALOG = Path(__file__).with_name("branchpy_catalog.toml")
EVENT_NAME_REGEX = r"^[a-z][a-z0-9]*(?:[._-][a-z0-9]+)*$"
ATTR_KEY_REGEX = r"^[a-z][a-z0-9_]*$"
MAX_NAME_LENGTH = 64
MAX_PATTERN_LENGTH = 64  # a declared regex: short, anchored, reviewed
MAX_ENUM_VALUE_LENGTH = 64

# Why a catalog check drops something (counted in the redaction report and the upload's answer).
DROP_UNDECLARED_EVENT = "undeclared_event"
DROP_EXPIRED_EVENT = "expired_event"
DROP_UNDECLARED_ATTR = "undeclared_attr"
DROP_INVALID_VALUE = "invalid_value"
CATALOG_RULES: tuple[str, ...] = (DROP_UNDECLARED_EVENT, DROP_EXPIRED_EVENT, DROP_UNDECLARED_ATTR,
                                  DROP_INVALID_VALUE)


# --- the file format (msgspec Structs; unknown keys are errors) ----------------------------------
class _Attr(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    description: str | None = None


class BoolAttr(_Attr, tag="bool"):
    pass


class IntAttr(_Attr, tag="int"):
    min: int | None = None
    max: int | None = None


class FloatAttr(_Attr, tag="float"):
    min: float | None = None
    max: float | None = None


class EnumAttr(_Attr, tag="enum"):
    values: list[str]


class VersionAttr(_Attr, tag="version"):
    pass


class DurationAttr(_Attr, tag="duration_ms"):
    pass


class PatternAttr(_Attr, tag="pattern"):
    regex: str


AttrSpec = BoolAttr | IntAttr | FloatAttr | EnumAttr | VersionAttr | DurationAttr | PatternAttr
ATTR_TYPES: tuple[str, ...] = ("bool", "int", "float", "enum", "version", "duration_ms", "pattern")


class EventSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    category: Category
    name: str
    description: str
    expires: str
    owner: str
    attrs: dict[str, AttrSpec] = {}


class ErrorsSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    code_pattern: str | None = None  # None: no error code leaves
    # top-level packages whose exception types may leave besides built-ins and the standard library
    type_modules: list[str] = []


class CatalogFile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    format: int
    id: str
    revision: str
    errors: ErrorsSpec = msgspec.field(default_factory=ErrorsSpec)
    event: list[EventSpec] = []


# --- the loaded catalog ----------------------------------------------------------------------------
AttrCheck = Callable[[Any], bool]


@dataclass(frozen=True)
class DeclaredEvent:
    spec: EventSpec
    expires: date | None  # None: never
    checks: dict[str, AttrCheck]  # attr key -> does this value pass its declaration
    free_text: frozenset[str]  # `pattern` attrs: still checked by the privacy rules, key and value

    def expired(self, today: date) -> bool:
        return self.expires is not None and today > self.expires


@dataclass(frozen=True)
class Catalog:
    id: str
    revision: str
    sha256: str
    source: str  # the file it was read from
    code_pattern: re.Pattern | None
    type_modules: frozenset[str]
    events: dict[tuple[str, str], DeclaredEvent] = field(repr=False)

    def lookup(self, category: str, name: str) -> DeclaredEvent | None:
        return self.events.get((category, name))

    def error_code_allowed(self, code: object) -> bool:
        return (type(code) is str and self.code_pattern is not None and len(code) <= MAX_NAME_LENGTH
                and self.code_pattern.fullmatch(code) is not None)

    def declares_name(self, name: str) -> bool:
        return any(key[1] == name for key in self.events)


def load_catalog(path: Path | str | None = None) -> Catalog:
    """Read and validate a catalog file (the bundled one when `path` is None)."""
    file = Path(path) if path is not None else BUNDLED_CATALOG
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise CatalogInvalidError(f"catalog {file} does not exist",
                                  hint="set telemetry.catalog to an existing file, or unset it") from None
    except OSError as exc:
        raise CatalogInvalidError(f"catalog {file}: cannot read: {exc.strerror}") from None
    return parse_catalog(data, str(file))


@functools.lru_cache(maxsize=8)
def _cached(path: str, mtime_ns: int, size: int) -> Catalog:
    return load_catalog(path)


def cached_catalog(path: Path | str | None = None) -> Catalog:
    """`load_catalog`, read again only when the file changes (size or modification time)."""
    file = Path(path) if path is not None else BUNDLED_CATALOG
    try:
        st = file.stat()
    except OSError:
        return load_catalog(file)  # raises the error that names the problem
    return _cached(str(file), st.st_mtime_ns, st.st_size)


def parse_catalog(data: bytes, source: str = "catalog") -> Catalog:
    try:
        tree = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise CatalogInvalidError(f"{source}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogInvalidError(f"{source}: not valid TOML: {exc}") from None
    attr_problems = _attr_shape_problems(tree)
    if attr_problems:
        raise CatalogInvalidError(f"{source}: {attr_problems[0]['entry']}: {attr_problems[0]['problem']}",
                                  details=attr_problems)
    try:
        parsed = msgspec.convert(tree, CatalogFile)
    except msgspec.ValidationError as exc:
        raise CatalogInvalidError(f"{source}: {_describe(exc, tree)}",
                                  details=[{"entry": _entry_of(exc, tree), "problem": str(exc)}]) from None
    problems: list[dict[str, str]] = []
    catalog = _compile(parsed, hashlib.sha256(data).hexdigest(), source, problems)
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CatalogInvalidError(f"{source}: {first['entry']}: {first['problem']}{more}", details=problems,
                                  hint="`branchpy telemetry catalog check FILE` lists every problem")
    return catalog


def _compile(parsed: CatalogFile, sha256: str, source: str, problems: list[dict[str, str]]) -> Catalog:
    def problem(entry: str, text: str) -> None:
        problems.append({"entry": entry, "problem": text})

    if parsed.format != CATALOG_FORMAT:
        problem("format", f"format {parsed.format} is not supported (this version reads format 1)")
    if re.fullmatch(CATALOG_ID_REGEX, parsed.id) is None:
        problem("id", "must be lower case letters, digits and . _ - (at most 64), starting with a letter")
    if re.fullmatch(CATALOG_REVISION_REGEX, parsed.revision) is None:
        problem("revision", "must be letters, digits and . + _ - (at most 32), e.g. 2026.12.1")
    code_pattern = _compile_pattern(parsed.errors.code_pattern, "errors.code_pattern", problem) \
        if parsed.errors.code_pattern is not None else None
    for module in parsed.errors.type_modules:
        if re.fullmatch(r"[a-z_][a-z0-9_]{0,63}", module) is None:
            problem("errors.type_modules", "each entry is a top-level package name (lower case)")
    events: dict[tuple[str, str], DeclaredEvent] = {}
    for i, spec in enumerate(parsed.event):
        entry = f"event[{i}] {spec.category}/{spec.name}"
        if len(spec.name) > MAX_NAME_LENGTH or re.fullmatch(EVENT_NAME_REGEX, spec.name) is None:
            problem(entry, "name: lower case words of letters and digits joined by . _ or - (at most 64)")
        if (spec.category, spec.name) in events:
            problem(entry, "declared twice")
        for text_field in ("description", "owner"):
            if not getattr(spec, text_field).strip():
                problem(entry, f"{text_field} must not be empty")
        expires = _expiry(spec.expires, entry, problem)
        # the server refuses an event with more attrs (client/contracts/limits.py)
        if len(spec.attrs) > MAX_ATTRS_PER_EVENT:
            problem(entry, f"at most {MAX_ATTRS_PER_EVENT} attrs per event")
        checks: dict[str, AttrCheck] = {}
        free_text = set()
        for key, attr in spec.attrs.items():
            attr_entry = f"{entry} attr {key}"
            if len(key) > MAX_ATTR_KEY_LENGTH or re.fullmatch(ATTR_KEY_REGEX, key) is None:
                problem(attr_entry, "keys are lower case letters, digits and _ "
                                    f"(at most {MAX_ATTR_KEY_LENGTH})")
            check = _attr_check(attr, attr_entry, problem)
            if check is not None:
                checks[key] = check
            if isinstance(attr, PatternAttr):
                free_text.add(key)
                if (rule := attr_key_rule(key)) is not None:
                    problem(attr_entry, f"a text attr with this name is always dropped ({rule}): rename it "
                                        "or give it a non-text type")
        events[(spec.category, spec.name)] = DeclaredEvent(spec, expires, checks, frozenset(free_text))
    return Catalog(id=parsed.id, revision=parsed.revision, sha256=sha256, source=source,
                   code_pattern=code_pattern, type_modules=frozenset(parsed.errors.type_modules),
                   events=events)


def _expiry(text: str, entry: str, problem) -> date | None:
    if text == "never":
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    problem(entry, f'expires: a date (YYYY-MM-DD) or "never", not {text!r}')
    return None


def _compile_pattern(regex: str, entry: str, problem) -> re.Pattern | None:
    if len(regex) > MAX_PATTERN_LENGTH:
        problem(entry, f"a pattern has at most {MAX_PATTERN_LENGTH} characters")
        return None
    if not (regex.startswith("^") and regex.endswith("$")):
        problem(entry, "a pattern must be anchored (^…$)")
        return None
    try:
        return re.compile(regex)
    except re.error as exc:
        problem(entry, f"not a valid regular expression: {exc}")
        return None


class IntRange:
    """An int declaration's check: an int (not a bool) within [lo, hi]. A class rather than a
    lambda so that the exporter's compiled scan can apply it without a Python call."""

    __slots__ = ("lo", "hi")

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi

    def __call__(self, value: object) -> bool:
        return type(value) is int and self.lo <= value <= self.hi


_is_bool = functools.partial(type.__instancecheck__, bool)  # isinstance(v, bool), called from C


def _attr_check(attr: AttrSpec, entry: str, problem) -> AttrCheck | None:
    """The function that decides whether a value passes this declaration."""
    if isinstance(attr, BoolAttr):
        return _is_bool
    if isinstance(attr, IntAttr):
        lo = attr.min if attr.min is not None else -(2**63)
        hi = attr.max if attr.max is not None else 2**63 - 1
        if lo > hi:
            problem(entry, "min is greater than max")
        return IntRange(lo, hi)
    if isinstance(attr, FloatAttr):
        flo = attr.min if attr.min is not None else -math.inf
        fhi = attr.max if attr.max is not None else math.inf
        if flo > fhi:
            problem(entry, "min is greater than max")
        return lambda v: (type(v) is float or type(v) is int) and flo <= v <= fhi and math.isfinite(v)
    if isinstance(attr, EnumAttr):
        values = tuple(dict.fromkeys(attr.values))
        if not values:
            problem(entry, "an enum needs at least one value")
        for value in attr.values:
            if len(value) > MAX_ENUM_VALUE_LENGTH or check_string(value) or secret_value_rule(value):
                problem(entry, "enum values are short labels that pass the privacy rules")
        # a tuple of strs: only an equal str is in it (C, no frame). Not a set: a set hashes the
        # value, and a list or an object from a spool line is unhashable (TypeError)
        return values.__contains__
    if isinstance(attr, VersionAttr):
        return is_version
    if isinstance(attr, DurationAttr):
        return lambda v: (type(v) is float or type(v) is int) and 0 <= v <= MAX_DURATION_MS
    pattern = _compile_pattern(attr.regex, entry, problem)
    if pattern is None:
        return None
    return lambda v: (type(v) is str and len(v) <= MAX_STRING_LENGTH and pattern.fullmatch(v) is not None
                      and check_string(v) is None and secret_value_rule(v) is None)


def _attr_shape_problems(tree: dict) -> list[dict[str, str]]:
    """Each attribute declaration checked on its own, so a problem names its key
    (msgspec shows a mapping's keys as `[...]`)."""
    problems = []
    events = tree.get("event")
    for i, spec in enumerate(events if isinstance(events, list) else []):
        attrs = spec.get("attrs") if isinstance(spec, dict) else None
        if not isinstance(attrs, dict):
            continue
        for key, attr in attrs.items():
            try:
                msgspec.convert(attr, AttrSpec)
            except msgspec.ValidationError as exc:
                text = re.sub(r" - at `\$[^`]*`$", "", str(exc))
                if "type" not in attr if isinstance(attr, dict) else False:
                    text = "needs a type: " + ", ".join(ATTR_TYPES)
                elif text.startswith("Invalid value"):
                    text = "unknown type; one of " + ", ".join(ATTR_TYPES)
                problems.append({"entry": f"event[{i}] {spec.get('category', '?')}/{spec.get('name', '?')} "
                                          f"attr {key}", "problem": text})
    return problems


def _describe(exc: msgspec.ValidationError, tree: dict) -> str:
    text = str(exc)
    entry = _entry_of(exc, tree)
    match = re.match(r"(.*?)(?: - at `\$[^`]*`)?$", text)
    return f"{entry}: {match.group(1) if match else text}"


def _entry_of(exc: msgspec.ValidationError, tree: dict) -> str:
    """`$.event[3].attrs.files` -> `event[3] command/analyze attr files`."""
    match = re.search(r"`\$\.?([^`]*)`", str(exc))
    where = match.group(1) if match else ""
    event = re.match(r"event\[(\d+)\](?:\.attrs\.([^.\[]+))?", where)
    if event is None:
        return where or "catalog"
    i = int(event.group(1))
    spec = tree.get("event", [])[i] if i < len(tree.get("event", [])) else {}
    label = f"event[{i}] {spec.get('category', '?')}/{spec.get('name', '?')}" if isinstance(spec, dict) \
        else f"event[{i}]"
    return label + (f" attr {event.group(2)}" if event.group(2) else "")


class EventDescription(msgspec.Struct, kw_only=True):
    category: Category
    name: str
    description: str
    owner: str
    expires: str  # YYYY-MM-DD or "never"
    expired: bool  # past its date: no longer collected
    attrs: dict[str, AttrSpec]


class ErrorsDescription(msgspec.Struct, kw_only=True):
    code_pattern: str | None
    type_modules: list[str]


class CatalogDescription(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What may be collected, for people and for the dashboard."""

    id: str
    revision: str
    sha256: str
    errors: ErrorsDescription
    categories: list[str]
    events: list[EventDescription]
    source: str | None = None  # the file it was read from (the daemon says; the server does not)


def describe_catalog(catalog: Catalog, today: date, *, with_source: bool = True) -> CatalogDescription:
    """What may be collected (`branchpy telemetry catalog`, `GET /catalog`)."""
    events = [
        EventDescription(category=category, name=name, description=d.spec.description,  # type: ignore[arg-type]
                         owner=d.spec.owner, expires=d.spec.expires, expired=d.expired(today),
                         attrs=dict(sorted(d.spec.attrs.items())))
        for (category, name), d in sorted(catalog.events.items())
    ]
    errors = ErrorsDescription(code_pattern=catalog.code_pattern.pattern if catalog.code_pattern else None,
                               type_modules=sorted(catalog.type_modules))
    return CatalogDescription(id=catalog.id, revision=catalog.revision, sha256=catalog.sha256, errors=errors,
                              categories=list(CATEGORIES), events=events,
                              source=catalog.source if with_source else None)
