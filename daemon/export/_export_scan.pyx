# cython: language_level=3, boundscheck=False, wraparound=False
"""Optional compiled form of the exporter's two per-record loops (the Python ones decide).

`record_scan(...)` is `daemon.block_proof.dirty_positions` in one pass: the
positions of the records `is_clean_record` (client/contracts/declared.py) declines — each
fixed-format field checked by its shape, each attr value judged by the
catalog's own check callables, nothing else.
`gather(evs)` collects what `aggregates.CleanBatch` needs in one pass.

Both return exactly what the Python code returns (property tests in
tests/daemon/test_block_proof.py run both on the same inputs); without a C
compiler the package installs without this module and the Python loops run.
EventRecord fields are msgspec slots, read at their offsets as the descriptor
itself does; any other type is read through getattr.
"""

from cpython.object cimport PyObject

from branchpy_telemetry.client.contracts.catalog import IntRange
from branchpy_telemetry.client.contracts.event import EventRecord


cdef extern from "Python.h":
    bint PyUnicode_IS_COMPACT_ASCII(object o)
    void* PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    ctypedef struct PyMemberDef:
        int type
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member


cdef Py_ssize_t _offset(str name) except -1:
    descr = EventRecord.__dict__.get(name)
    if type(descr).__name__ != "member_descriptor":
        raise ImportError(f"EventRecord.{name} is not a slot")
    cdef PyMemberDef* m = (<PyMemberDescrObject*><PyObject*>descr).d_member
    if m.type != 16 and m.type != 6:  # Py_T_OBJECT_EX / T_OBJECT
        raise ImportError(f"EventRecord.{name} is not an object slot")
    return m.offset


cdef Py_ssize_t O_V = _offset("v"), O_ID = _offset("event_id"), O_SESSION = _offset("session_id")
cdef Py_ssize_t O_TS = _offset("ts"), O_CAT = _offset("category"), O_NAME = _offset("name")
cdef Py_ssize_t O_SRC = _offset("source"), O_DUR = _offset("duration_ms"), O_STATUS = _offset("status")
cdef Py_ssize_t O_CID = _offset("correlation_id"), O_ERROR = _offset("error"), O_ATTRS = _offset("attrs")
cdef object _RECORD = EventRecord
cdef object _INT_RANGE = IntRange


cdef inline object _field(object rec, Py_ssize_t off, str name):
    """The field of an EventRecord at its offset (None when unset), else getattr."""
    cdef PyObject* p
    if type(rec) is _RECORD:
        p = (<PyObject**>((<char*><PyObject*>rec) + off))[0]
        return None if p is NULL else <object>p
    return getattr(rec, name)


# `00000000-0000-0000-0000-000000000000`: 0 where a lower-case hex digit goes
cdef const char* _UUID_SHAPE = b"00000000-0000-0000-0000-000000000000"
# `0000-00-00T00:00:00.000Z`: 0 where an ASCII digit goes
cdef const char* _TS_SHAPE = b"0000-00-00T00:00:00.000Z"


cdef inline bint _shaped(object s, const char* shape, Py_ssize_t n, bint hex_digits):
    """`s` is an exact str of `n` ASCII characters following `shape`, digits (or lower-case hex) at 0s."""
    cdef const unsigned char* p
    cdef Py_ssize_t i
    cdef unsigned char c
    if type(s) is not str or not PyUnicode_IS_COMPACT_ASCII(s) or PyUnicode_GET_LENGTH(s) != n:
        return False
    p = <const unsigned char*>PyUnicode_DATA(s)
    for i in range(n):
        c = p[i]
        if shape[i] == b'0':
            if not (b'0' <= c <= b'9' or (hex_digits and b'a' <= c <= b'f')):
                return False
        elif c != shape[i]:
            return False
    return True


cdef inline bint _ref_ok(object value, set good, object ref_id_ok):
    return value is None or value in good or ref_id_ok(value)


def record_scan(list block, dict checks_by_event, frozenset statuses, set good_ids, object ref_id_ok):
    """Positions of the records `is_clean_record` declines: `v` 1, a UUID event id, a wire-form
    timestamp, a known status, well-formed session and correlation ids (`good_ids`: the ones
    `ref_id_ok` already passed; it adds those it passes), a current declared event, no error,
    and attrs that are absent or all declared and valid."""
    cdef list dirty = []
    cdef Py_ssize_t i, n = len(block)
    cdef object rec, checks, attrs, check, key, value, v, status
    for i in range(n):
        rec = block[i]
        v = _field(rec, O_V, "v")
        status = _field(rec, O_STATUS, "status")
        if (type(v) is not int or v != 1
                or not _shaped(_field(rec, O_ID, "event_id"), _UUID_SHAPE, 36, True)
                or not _shaped(_field(rec, O_TS, "ts"), _TS_SHAPE, 24, False)
                or (status is not None and status not in statuses)
                or not _ref_ok(_field(rec, O_SESSION, "session_id"), good_ids, ref_id_ok)
                or not _ref_ok(_field(rec, O_CID, "correlation_id"), good_ids, ref_id_ok)):
            dirty.append(i)
            continue
        checks = checks_by_event.get((_field(rec, O_CAT, "category"), _field(rec, O_NAME, "name")))
        if checks is None or _field(rec, O_ERROR, "error") is not None:
            dirty.append(i)
            continue
        attrs = _field(rec, O_ATTRS, "attrs")
        if attrs is None:
            continue
        if type(attrs) is not dict or not attrs:
            dirty.append(i)
            continue
        for key, value in (<dict>attrs).items():
            check = (<dict>checks).get(key)
            if check is None:
                dirty.append(i)
                break
            if type(check) is _INT_RANGE:  # IntRange.__call__, without the call
                if type(value) is not int or not (check.lo <= value <= check.hi):
                    dirty.append(i)
                    break
            elif not check(value):
                dirty.append(i)
                break
    return dirty


def gather(list evs):
    """(earliest and latest timestamp, durations by name in event order, combination counts,
    correlation ids): `aggregates.gather_in_python` in one pass."""
    cdef Py_ssize_t i, n = len(evs)
    cdef dict combos = {}, durations = {}
    cdef set cids = set()
    cdef object ev, name, d, cid, key, count, ts, values, first = None, last = None
    for i in range(n):
        ev = evs[i]
        ts = _field(ev, O_TS, "ts")
        if first is None or ts < first:
            first = ts
        if last is None or ts > last:
            last = ts
        name = _field(ev, O_NAME, "name")
        d = _field(ev, O_DUR, "duration_ms")
        if d is not None:
            values = durations.get(name)
            if values is None:
                durations[name] = [d]
            else:
                (<list>values).append(d)
        cid = _field(ev, O_CID, "correlation_id")
        if cid is not None:
            cids.add(cid)
        key = (_field(ev, O_CAT, "category"), name, _field(ev, O_SRC, "source"), _field(ev, O_STATUS, "status"))
        count = combos.get(key)
        combos[key] = 1 if count is None else count + 1
    return first, last, durations, combos, cids
