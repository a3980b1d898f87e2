"""The exporter's proof for a whole block: which records `is_clean_record` declines.

`dirty_positions(block, policy)` checks the fixed-format fields once per block
(ids and timestamps joined and translated in C, statuses and ref ids over their
distinct values); when those pass, only each record's name, error and attrs
remain (`scan_records`). When they do not, every record gets
`is_clean_record`. The compiled `_export_scan.record_scan` does all of it in one
pass. Property tests prove every way gives the same positions.
"""

from __future__ import annotations

from itertools import count
from operator import attrgetter

from branchpy_telemetry.client.contracts.declared import STATUS_SET, ExportPolicy, is_clean_record
from branchpy_telemetry.client.contracts.event import EventRecord

try:  # the optional compiled form of `dirty_positions`
    from branchpy_telemetry.daemon.export._export_scan import record_scan
except ImportError:  # pragma: no cover - only without a C compiler at install time
    record_scan = None

_DIGITS_TO_ZERO = bytes.maketrans(b"0123456789", b"0000000000")
_WIRE_TS_SHAPE = b"0000-00-00T00:00:00.000Z"
_UUID_TABLE = bytes(48 if chr(c) in "0123456789abcdef" else c if c == 45 else 33 for c in range(256))
_UUID_SHAPE = b"00000000-0000-0000-0000-000000000000"
_ALLOWED_STATUSES = STATUS_SET | {None}
_CATEGORY_NAME, _ERROR, _ATTRS = attrgetter("category", "name"), attrgetter("error"), attrgetter("attrs")


def dirty_positions(block: list[EventRecord], policy: ExportPolicy) -> list[int]:
    """The positions in `block` of the records `is_clean_record` declines; the checks of
    fixed-format fields run once per block (joined and translated in C, or over the
    distinct values)."""
    if record_scan is not None:
        return record_scan(block, policy.checks_by_event, STATUS_SET, policy.good_ids, policy.ref_id_ok)
    n = len(block)
    ids = [rec.event_id for rec in block]
    tss = [rec.ts for rec in block]
    joined_ids, joined_ts = "".join(ids), "".join(tss)
    if not (n and len(joined_ids) == 36 * n and min(map(len, ids)) == 36 and joined_ids.isascii()
            and joined_ids.encode().translate(_UUID_TABLE) == _UUID_SHAPE * n
            and len(joined_ts) == 24 * n and min(map(len, tss)) == 24 and joined_ts.isascii()
            and joined_ts.encode().translate(_DIGITS_TO_ZERO) == _WIRE_TS_SHAPE * n
            and {rec.status for rec in block} <= _ALLOWED_STATUSES
            and {(rec.v, type(rec.v)) for rec in block} == {(1, int)}
            and all(policy.ref_id_ok(i) for i in {rec.session_id for rec in block} if i is not None)
            and all(policy.ref_id_ok(i) for i in {rec.correlation_id for rec in block} if i is not None)):
        return [i for i, rec in enumerate(block) if not is_clean_record(rec, policy)]
    return scan_records(block, policy)


def scan_records(block: list[EventRecord], policy: ExportPolicy) -> list[int]:
    """The per-record part of `dirty_positions`: name, error and attrs."""
    dirty = []
    declared_events = map(policy.events.get, map(_CATEGORY_NAME, block))
    for i, declared, err, attrs in zip(count(), declared_events, map(_ERROR, block), map(_ATTRS, block)):
        if declared is None or err is not None:
            dirty.append(i)
        elif attrs is not None:
            if not attrs:
                dirty.append(i)
                continue
            checks = declared.checks
            for key, value in attrs.items():
                check = checks.get(key)
                if check is None or not check(value):
                    dirty.append(i)
                    break
    return dirty
