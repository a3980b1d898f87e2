"""Applying the event catalog: what an event may keep, at both ends.

The exporter calls `sanitize_event` for every record: an undeclared or expired
event is dropped whole; an undeclared attr, or a value of the wrong type or out
of its declared range, is dropped; fixed-format fields the emitter writes (ids,
status, timestamp) keep only that form — a caller-supplied session or
correlation id in another form is replaced by a keyed hash; an error keeps a
code only when the catalog's `code_pattern` matches it, and its message only
as the hash of a template (`error_hashing`). Every change is counted in the
redaction report (by rule, with JSON pointers: never a removed value, never an
undeclared key's name). `is_clean_record` is the fast proof that a record needs
none of this (`daemon/export/block_proof.py` gives the same answer for a whole block).

The server calls `filter_package` after the privacy rules passed: it keeps
only what its own catalog declares and counts the rest (`dropped`), so a client
with a newer catalog loses nothing else of its package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import msgspec

from branchpy_telemetry.client.contracts.catalog import (
    DROP_EXPIRED_EVENT,
    DROP_INVALID_VALUE,
    DROP_UNDECLARED_ATTR,
    DROP_UNDECLARED_EVENT,
    MAX_NAME_LENGTH,
    Catalog,
    DeclaredEvent,
)
from branchpy_telemetry.client.contracts.error_hashing import hash_error_message
from branchpy_telemetry.client.contracts.event import EventRecord
from branchpy_telemetry.client.contracts.fixed_formats import (
    STATUSES,
    is_ref_id,
    is_uuid,
    keyed_event_id,
    keyed_ref_id,
)
from branchpy_telemetry.client.contracts.privacy import check_string
from branchpy_telemetry.client.contracts.redaction import RedactionReport, escape_pointer_token
from branchpy_telemetry.client.contracts.schema import SanitizedEvent, TelemetryPackage
from branchpy_telemetry.client.contracts.timewindow import format_ts, parse_time

RULE_KEYED_ID = "keyed_id"  # a caller-supplied id in another form, replaced by its keyed hash
STATUS_SET = frozenset(STATUSES)
_WIRE_TS_SHAPE = b"0000-00-00T00:00:00.000Z"
_DIGITS_TO_ZERO = bytes.maketrans(b"0123456789", b"0000000000")
_MAX_CACHED_IDS = 100_000
MAX_LEFT_OUT_NAMES = 50


@dataclass
class ExportPolicy:
    """What one export applies: the catalog, today's date (expiry), the install's id key."""

    catalog: Catalog
    today: date
    id_key: bytes
    events: dict[tuple[str, str], DeclaredEvent] = field(init=False, repr=False)
    checks_by_event: dict[tuple[str, str], dict] = field(init=False, repr=False)  # the current events' checks
    # "category/name" of the events dropped as undeclared or expired, for this machine's user
    # (the export's local record, `preview`); never written into a package or its report
    left_out: dict[str, int] = field(default_factory=dict)
    good_ids: set[str] = field(default_factory=set, repr=False)  # session/correlation ids seen valid

    def __post_init__(self) -> None:
        self.events = {key: ev for key, ev in self.catalog.events.items() if not ev.expired(self.today)}
        self.checks_by_event = {key: ev.checks for key, ev in self.events.items()}

    def note_left_out(self, category: str, name: str) -> None:
        key = f"{category}/{name[:MAX_NAME_LENGTH]}"
        if key in self.left_out or len(self.left_out) < MAX_LEFT_OUT_NAMES:
            self.left_out[key] = self.left_out.get(key, 0) + 1
        else:
            self.left_out["…"] = self.left_out.get("…", 0) + 1

    def ref_id_ok(self, value: str) -> bool:
        if value in self.good_ids:
            return True
        if not is_ref_id(value):
            return False
        if len(self.good_ids) >= _MAX_CACHED_IDS:
            self.good_ids.clear()
        self.good_ids.add(value)
        return True


def is_wire_ts(ts: object) -> bool:
    return type(ts) is str and ts.isascii() and ts.encode().translate(_DIGITS_TO_ZERO) == _WIRE_TS_SHAPE


def is_clean_record(record: EventRecord, policy: ExportPolicy) -> bool:
    """True when `sanitize_event` would keep the record as it is with nothing to report:
    declared and current, no error, `v` 1, canonical ids, status and timestamp, and
    attrs that are absent, or present, not empty and all declared and valid. Then
    msgspec's encoding of the record is byte for byte that of its SanitizedEvent
    (`v` and `error` are omitted as defaults; field order is the same)."""
    declared = policy.events.get((record.category, record.name))
    if declared is None or record.error is not None or record.v != 1 or type(record.v) is not int:
        return False
    status, sid, cid = record.status, record.session_id, record.correlation_id
    if (status is not None and status not in STATUS_SET) or not is_uuid(record.event_id) \
            or not is_wire_ts(record.ts):
        return False
    if (sid is not None and not policy.ref_id_ok(sid)) or (cid is not None and not policy.ref_id_ok(cid)):
        return False
    attrs = record.attrs
    if attrs is not None:
        if not attrs:
            return False
        checks = declared.checks
        for key, value in attrs.items():
            check = checks.get(key)
            if check is None or not check(value):
                return False
    return True


def sanitize_event(record: EventRecord, index: int, report: RedactionReport,
                   policy: ExportPolicy) -> SanitizedEvent | None:
    """The SanitizedEvent that may leave the machine, or None when the event is dropped whole."""
    declared = policy.catalog.lookup(record.category, record.name)
    if declared is None or declared.expired(policy.today):
        report.count(DROP_UNDECLARED_EVENT if declared is None else DROP_EXPIRED_EVENT)
        policy.note_left_out(str(record.category), str(record.name))
        return None
    base = f"/summary/events/{index}"
    ts = record.ts if is_wire_ts(record.ts) else _wire_ts(record.ts)
    if ts is None:
        report.count(DROP_INVALID_VALUE)  # not a time: the reader skips these; from elsewhere, dropped whole
        return None
    event_id = record.event_id
    if not is_uuid(event_id):
        event_id = keyed_event_id(str(event_id), policy.id_key)
        report.add(base + "/event_id", RULE_KEYED_ID)
    status = record.status
    if status is not None and status not in STATUS_SET:
        report.add(base + "/status", DROP_INVALID_VALUE)
        status = None
    session_id = _ref_id(record.session_id, base + "/session_id", report, policy)
    correlation_id = _ref_id(record.correlation_id, base + "/correlation_id", report, policy)
    error_code = error_hash = None
    err = record.error
    if err is not None:
        if err.code is not None:
            if policy.catalog.error_code_allowed(err.code):
                error_code = err.code
            else:
                report.add(base + "/error_code", DROP_INVALID_VALUE)
        if err.message is not None or err.type is not None:
            error_hash = hash_error_message(err.message or "", err.type, policy.catalog.type_modules)
    attrs = _declared_attrs(record.attrs, declared, base + "/attrs", report) if record.attrs else {}
    return SanitizedEvent(
        event_id=event_id, ts=ts, category=record.category, source=record.source, name=record.name,
        duration_ms=record.duration_ms, status=status, session_id=session_id, correlation_id=correlation_id,
        error_code=error_code, error_hash=error_hash, attrs=attrs,
    )


def _wire_ts(ts: object) -> str | None:
    try:
        return format_ts(parse_time(ts)) if type(ts) is str else None
    except Exception:  # not a time (UsageError), or out of range
        return None


def _ref_id(value: str | None, pointer: str, report: RedactionReport, policy: ExportPolicy) -> str | None:
    if value is None or (type(value) is str and policy.ref_id_ok(value)):
        return value
    report.add(pointer, RULE_KEYED_ID)
    return keyed_ref_id(str(value), policy.id_key)


def _declared_attrs(attrs: dict, declared: DeclaredEvent, pointer: str, report: RedactionReport) -> dict:
    """The attrs the declaration allows; an undeclared key is reported at the attrs object
    (`location: key`: its name is never written), a bad value at its declared key."""
    checks = declared.checks
    kept = {}
    for key, value in attrs.items():
        check = checks.get(key) if type(key) is str else None
        if check is None:
            report.add(pointer, DROP_UNDECLARED_ATTR, "key")
        elif check(value):
            kept[key] = value
        else:
            rule = check_string(value) if type(value) is str and key in declared.free_text else None
            report.add(f"{pointer}/{escape_pointer_token(key)}", rule or DROP_INVALID_VALUE)
    return kept


# --- the server's side ---------------------------------------------------------------------------
def filter_package(package: TelemetryPackage, catalog: Catalog,
                   today: date) -> tuple[TelemetryPackage, dict[str, int]]:
    """The package with only what `catalog` declares, and what was dropped per reason.

    Called after the schema and the privacy rules passed, so every string is
    already known to be safe; this keeps undeclared data from being stored.
    Returns the same object when nothing is dropped.
    """
    dropped: dict[str, int] = {}
    kept: list[SanitizedEvent] = []
    changed = False
    lookup = catalog.events.get
    for event in package.summary.events:
        declared = lookup((event.category, event.name))
        reason = None
        if declared is None:
            reason = DROP_UNDECLARED_EVENT
        elif declared.expired(today):
            reason = DROP_EXPIRED_EVENT
        if reason is not None:
            dropped[reason] = dropped.get(reason, 0) + 1
            changed = True
            continue
        attrs, code = event.attrs, event.error_code
        checks = declared.checks
        if attrs and not all((c := checks.get(k)) is not None and c(v) for k, v in attrs.items()):
            attrs = {}
            for key, value in event.attrs.items():
                check = checks.get(key)
                if check is not None and check(value):
                    attrs[key] = value
                else:
                    reason = DROP_UNDECLARED_ATTR if check is None else DROP_INVALID_VALUE
                    dropped[reason] = dropped.get(reason, 0) + 1
        if code is not None and not catalog.error_code_allowed(code):
            dropped[DROP_INVALID_VALUE] = dropped.get(DROP_INVALID_VALUE, 0) + 1
            code = None
        if attrs is not event.attrs or code is not event.error_code:
            event = msgspec.structs.replace(event, attrs=attrs, error_code=code)
            changed = True
        kept.append(event)
    if not changed:
        return package, dropped
    summary = msgspec.structs.replace(package.summary, events=kept, event_count=len(kept))
    return msgspec.structs.replace(package, summary=summary), dropped
