# cython: language_level=3, boundscheck=False, wraparound=False
"""Optional compiled hot loop of the exporter (see `package_builder._PartBuilder.run`).

`is_clean_fast(rec)` is a conservative subset of
`client.redaction.is_clean_record`: it may decline a clean record (the
exporter then asks the Python proof), never accept one the Python proof
declines. It accepts only: no error, `v` exactly the int 1, a wire-form
timestamp, exact `str` texts of printable ASCII without `/ \\ ~ % & @ :`, each at
most MAX_STRING_LENGTH long, scalar attr values, and an attr-key tuple that the
Python proof has already passed (its cache `_KEYS_PASSED`).

`take_records(...)` runs the exporter's loop over a decoded block: check ->
encode -> append -> aggregate (`PartAggregates.add_clean` inlined, then
`add_rest` for a record that is not clean), stopping at the first record it
does not handle. Besides clean records it takes those whose
only differences are an error (its message hashed by
`client.error_hashing.hash_error_message`, its type kept only when it passes the
same conservative test) and attr string values the conservative test cannot
pass (`client.privacy.check_string` decides each, as `sanitize_event` does).
Everything else — and every decision near the size cap — is the Python
loop's. Tests prove both loops write byte-identical packages.
"""

from cpython.object cimport PyObject

from branchpy_telemetry.client.event import ErrorInfo, EventRecord
from branchpy_telemetry.client.error_hashing import hash_error_message
from branchpy_telemetry.client.privacy import MAX_STRING_LENGTH, check_string
from branchpy_telemetry.client.redaction import _KEYS_PASSED, escape_pointer_token
from branchpy_telemetry.client.schema import SanitizedEvent
from branchpy_telemetry.daemon.aggregates import _PERF_ENTRY, WIRE_TS_WIDTH, json_len

cdef Py_ssize_t _MAX_LEN = MAX_STRING_LENGTH
cdef Py_ssize_t _PERF = _PERF_ENTRY
cdef Py_ssize_t _WIRE = WIRE_TS_WIDTH
cdef dict _keys_passed = _KEYS_PASSED


# EventRecord's fields are msgspec slots (member descriptors): read them by
# offset, as the descriptor itself does. Any other layout: no accelerator.
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


cdef Py_ssize_t O_V = _offset("v"), O_ID = _offset("event_id"), O_TS = _offset("ts")
cdef Py_ssize_t O_CAT = _offset("category"), O_SRC = _offset("source"), O_NAME = _offset("name")
cdef Py_ssize_t O_DUR = _offset("duration_ms"), O_STATUS = _offset("status")
cdef Py_ssize_t O_SESSION = _offset("session_id"), O_CID = _offset("correlation_id")
cdef Py_ssize_t O_ERROR = _offset("error"), O_ATTRS = _offset("attrs")
cdef object _RECORD = EventRecord
cdef object _ERROR_INFO = ErrorInfo
cdef object _SANITIZED = SanitizedEvent
cdef object _hash_error_message = hash_error_message
cdef object _check_string = check_string
cdef object _escape_pointer_token = escape_pointer_token
cdef enum:
    _N_FIELDS = 12
cdef Py_ssize_t _OFFSETS[_N_FIELDS]
_OFFSETS[:] = [O_V, O_ID, O_TS, O_CAT, O_SRC, O_NAME, O_DUR, O_STATUS, O_SESSION, O_CID, O_ERROR, O_ATTRS]


cdef inline PyObject* _slot(object rec, Py_ssize_t off):
    """The field's object (borrowed), NULL when unset."""
    return (<PyObject**>((<char*><PyObject*>rec) + off))[0]


cdef inline object _set_field(object rec, Py_ssize_t off):
    """The field's object, for a record whose fields are all set (`_classify` checks first)."""
    return <object>_slot(rec, off)


# 1 for printable ASCII except `/ \\ ~ % & @ :`, else 0 (indexed by an ASCII code)
cdef unsigned char _SAFE[128]
for _c in range(128):
    _SAFE[_c] = 0x20 <= _c < 0x7F and chr(_c) not in "/\\~%&@:"


cdef inline bint _text_ok(object s):
    """An exact str of printable ASCII without `/ \\ ~ % & @ :`, not too long.
    Read in place: a compact ASCII str stores one byte per character (any
    other representation is declined, so the Python proof decides)."""
    cdef const unsigned char* p
    cdef Py_ssize_t i, n
    if type(s) is not str or not PyUnicode_IS_COMPACT_ASCII(s):
        return False
    n = PyUnicode_GET_LENGTH(s)
    if n > _MAX_LEN:
        return False
    p = <const unsigned char*>PyUnicode_DATA(s)
    for i in range(n):
        if not _SAFE[p[i]]:
            return False
    return True


cdef inline bint _opt_text_ok(object s):
    return s is None or _text_ok(s)


# `0000-00-00T00:00:00.000Z`: the fixed characters; 0 where any ASCII digit goes
cdef const char* _TS_SHAPE = b"0000-00-00T00:00:00.000Z"


cdef inline bint _ts_ok(object s):
    """`0000-00-00T00:00:00.000Z` with any ASCII digit for each 0."""
    cdef const unsigned char* p
    cdef Py_ssize_t i
    cdef unsigned char c, want
    if type(s) is not str or not PyUnicode_IS_COMPACT_ASCII(s) or PyUnicode_GET_LENGTH(s) != 24:
        return False
    p = <const unsigned char*>PyUnicode_DATA(s)
    for i in range(24):
        c = p[i]
        want = <unsigned char>_TS_SHAPE[i]
        if want == b'0':
            if c < b'0' or c > b'9':
                return False
        elif c != want:
            return False
    return True


cdef set _known_keys = set()  # keys of tuples the Python proof passed (_KEYS_PASSED)


cdef bint _keys_known(dict attrs):
    """Every key is one the Python proof passed (in a passed tuple, every key passes)."""
    cdef object k, t
    for k in attrs:
        if k not in _known_keys or type(k) is not str:
            t = tuple(attrs)
            if t not in _keys_passed:
                return False
            if len(_known_keys) > 4096:
                _known_keys.clear()
            _known_keys.update(t)
            return True
    return True


# What `_classify` finds: DECLINE, or CLEAN plus any of the two flags
cdef enum:
    DECLINE = -1
    CLEAN = 0
    HAS_ERROR = 1  # an error whose code is None or passes `_text_ok`
    ATTRS_TO_CHECK = 2  # attr string values that `_text_ok` cannot pass: the rules decide


cdef int _classify(object rec):
    """CLEAN: `is_clean_fast`. With HAS_ERROR: the record has an error whose
    code is None or passes `_text_ok` (`sanitize_event` hashes its message,
    no finding). With ATTRS_TO_CHECK: some attr values are strings `_text_ok`
    does not pass; `client.privacy.check_string` decides each (keys are known
    clean and every other value is a scalar, so no other finding can arise).
    DECLINE: anything else (the Python code decides)."""
    cdef object v, attrs, value, kind, err
    cdef int k, found = CLEAN
    if type(rec) is not _RECORD:
        return DECLINE
    for k in range(_N_FIELDS):
        if _slot(rec, _OFFSETS[k]) is NULL:
            return DECLINE
    v = _set_field(rec, O_V)
    if type(v) is not int or v != 1:
        return DECLINE
    if not _ts_ok(_set_field(rec, O_TS)):
        return DECLINE
    if not (_text_ok(_set_field(rec, O_ID)) and _text_ok(_set_field(rec, O_NAME))
            and _opt_text_ok(_set_field(rec, O_STATUS)) and _opt_text_ok(_set_field(rec, O_SESSION))
            and _opt_text_ok(_set_field(rec, O_CID))):
        return DECLINE
    attrs = _set_field(rec, O_ATTRS)
    if attrs is not None:
        if type(attrs) is not dict or not attrs:
            return DECLINE
        if not _keys_known(<dict>attrs):
            return DECLINE
        for value in (<dict>attrs).values():
            kind = type(value)
            if kind is str:
                if not _text_ok(value):
                    found |= ATTRS_TO_CHECK
            elif not (kind is int or kind is float or kind is bool or value is None):
                return DECLINE
    err = _set_field(rec, O_ERROR)
    if err is None:
        return found
    if type(err) is not _ERROR_INFO or not _opt_text_ok(err.code):
        return DECLINE
    return found | HAS_ERROR


cpdef bint is_clean_fast(object rec):
    """A conservative subset of `is_clean_record` (see the module note)."""
    return _classify(rec) == CLEAN


cdef object _checked_attrs(dict attrs, str attrs_pointer, list found, dict rules):
    """`redaction._sanitize_attrs` for an ATTRS_TO_CHECK record: the values
    `_text_ok` does not pass go to `check_string`; each one a rule removes is
    left out, counted in `rules` and noted in `found` (pointer, rule, location)."""
    cdef dict kept = {}
    cdef object key, value, rule
    for key, value in attrs.items():
        if type(value) is str and not _text_ok(value):
            rule = _check_string(value)
            if rule is not None:
                rules[rule] = rules.get(rule, 0) + 1
                found.append((f"{attrs_pointer}/{_escape_pointer_token(key)}", rule, "value"))
                continue
        kept[key] = value
    return kept


cdef object _sanitized(object rec, object error_code, object error_hash, object attrs):
    """The SanitizedEvent of a record `_classify` did not decline."""
    return _SANITIZED(
        event_id=_set_field(rec, O_ID), ts=_set_field(rec, O_TS), category=_set_field(rec, O_CAT),
        source=_set_field(rec, O_SRC), name=_set_field(rec, O_NAME), duration_ms=_set_field(rec, O_DUR),
        status=_set_field(rec, O_STATUS), session_id=_set_field(rec, O_SESSION),
        correlation_id=_set_field(rec, O_CID), error_code=error_code, error_hash=error_hash,
        attrs=attrs if attrs else {})


def take_records(list block, Py_ssize_t i, object encode_into, bytearray body, object agg,
                 Py_ssize_t events_bytes, Py_ssize_t limit, Py_ssize_t max_n, Py_ssize_t count,
                 object add_findings, Py_ssize_t flush_at):
    """Handle `block[i:]` the way the exporter does, while `_classify` does not
    decline the records and they fit the part (by the exporter's quick test),
    at most `max_n` of them, until `body` holds `flush_at` bytes: each is
    encoded (`msgspec.json.Encoder.encode_into`) onto `body`, after a comma
    unless it is the part's first, and aggregated; findings go to
    `add_findings`. `count` is how many events the part holds already
    (findings point at `/summary/events/<index>`). Returns `(next index,
    events_bytes)`; the caller handles the record at the next index (if any)
    itself."""
    cdef Py_ssize_t n = len(block)
    cdef Py_ssize_t stop = i + max_n
    cdef Py_ssize_t first_i = i
    cdef Py_ssize_t need, bound, start
    cdef int kind
    cdef bint comma
    cdef object rec, ts, name, d, lst, key, cnt, cid, err, error_code, error_hash, error_type, ev
    cdef object rules, found
    cdef str first, last
    cdef dict durations, combos
    cdef set cids
    if stop > n:
        stop = n
    if agg.ts_width < _WIRE:
        return i, events_bytes
    durations = agg.durations
    combos = agg.combos
    cids = agg.correlation_ids
    first = agg._first
    last = agg._last
    bound = agg.bound
    try:
        while i < stop and len(body) < flush_at:
            rec = block[i]
            kind = _classify(rec)
            if kind == DECLINE:
                break
            error_code = error_hash = error_type = rules = found = None
            if kind == CLEAN:
                ev = rec  # its encoding is its SanitizedEvent's (is_clean_record)
            else:  # as `sanitize_event` and the exporter's general case
                if kind & HAS_ERROR:
                    err = _set_field(rec, O_ERROR)
                    error_code = err.code
                    if err.message is not None or err.type is not None:
                        error_hash = _hash_error_message(err.message or "", err.type)
                        if err.type is not None:
                            if not _text_ok(err.type):
                                break  # the type needs the full rules: the Python code decides
                            error_type = err.type
                attrs = _set_field(rec, O_ATTRS)
                if kind & ATTRS_TO_CHECK:
                    rules, found = {}, []
                    attrs = _checked_attrs(attrs, f"/summary/events/{count + i - first_i}/attrs", found, rules)
                    if not rules:
                        rules = found = None
                ev = _sanitized(rec, error_code, error_hash, attrs)
            start = len(body)
            comma = count + (i - first_i) > 0
            if comma:
                body.append(44)  # ","
            encode_into(ev, body, -1)
            need = len(body) - start + (0 if comma else 1)  # the event's bytes + 1, as the exporter counts
            if events_bytes + need * 7 + 4096 + bound + (len(rules) * 64 if rules else 0) > limit:
                del body[start:]
                break
            events_bytes += need
            # PartAggregates.add_clean, inlined (ts_width >= WIRE_TS_WIDTH already;
            # a sanitized event has the record's values for every field it reads)
            ts = _set_field(rec, O_TS)
            if ts > last:
                last = ts
            if ts < first:
                first = ts
            name = _set_field(rec, O_NAME)
            d = _set_field(rec, O_DUR)
            if d is not None:
                lst = durations.get(name)
                if lst is None:
                    durations[name] = [d]
                    bound += _PERF + json_len(name)
                else:
                    (<list>lst).append(d)
            key = (_set_field(rec, O_CAT), name, _set_field(rec, O_SRC), _set_field(rec, O_STATUS))
            cnt = combos.get(key)
            if cnt is None:
                agg.bound = bound
                agg._new_combo(key)
                bound = agg.bound
            else:
                (<list>cnt)[0] += 1
            cid = _set_field(rec, O_CID)
            if cid is not None and cid not in cids:
                cids.add(cid)
                bound += json_len(cid) + 1
            if kind != CLEAN:  # the rest of PartAggregates.add
                agg.bound = bound
                agg.add_rest(ev, error_type, rules)
                bound = agg.bound
                if found is not None:
                    add_findings(found)
            i += 1
    finally:
        agg._first = first
        agg._last = last
        agg.bound = bound
    return i, events_bytes
