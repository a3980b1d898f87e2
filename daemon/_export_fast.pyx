# cython: language_level=3, boundscheck=False, wraparound=False
"""Optional compiled hot loop of the exporter (see `exporter._PartBuilder.run`).

`is_clean_fast(rec)` is a conservative subset of
`client.redaction.is_clean_record`: it may decline a clean record (the
exporter then asks the Python proof), never accept one the Python proof
declines. It accepts only: no error, `v` exactly the int 1, a wire-form
timestamp, exact `str` texts of printable ASCII without `/ \\ ~ % & :`, each at
most MAX_STRING_LENGTH long, scalar attr values, and an attr-key tuple that the
Python proof has already passed (its cache `_KEYS_PASSED`).

`take_clean(...)` runs the exporter's common case over a decoded block:
check -> encode -> append -> aggregate (`PartAggregates.add_clean`, inlined),
stopping at the first record it does not handle.
"""

from branchpy_telemetry.client.privacy import MAX_STRING_LENGTH
from branchpy_telemetry.client.redaction import _KEYS_PASSED
from branchpy_telemetry.daemon.aggregates import _PERF_ENTRY, WIRE_TS_WIDTH, json_len

cdef Py_ssize_t _MAX_LEN = MAX_STRING_LENGTH
cdef Py_ssize_t _PERF = _PERF_ENTRY
cdef Py_ssize_t _WIRE = WIRE_TS_WIDTH
cdef dict _keys_passed = _KEYS_PASSED


cdef inline bint _text_ok(object s):
    """An exact str of printable ASCII without `/ \\ ~ % & :`, not too long."""
    cdef str t
    cdef Py_UCS4 c
    if type(s) is not str:
        return False
    t = <str>s
    if len(t) > _MAX_LEN:
        return False
    for c in t:
        if c < 0x20 or c >= 0x7F or c == u'/' or c == u'\\' or c == u'~' or c == u'%' \
                or c == u'&' or c == u':':
            return False
    return True


cdef inline bint _opt_text_ok(object s):
    return s is None or _text_ok(s)


cdef inline bint _ts_ok(object s):
    """`0000-00-00T00:00:00.000Z` with any ASCII digit for each 0."""
    cdef str t
    cdef Py_UCS4 c
    cdef Py_ssize_t i
    if type(s) is not str:
        return False
    t = <str>s
    if len(t) != 24:
        return False
    i = 0
    for c in t:
        if i == 4 or i == 7:
            if c != u'-':
                return False
        elif i == 10:
            if c != u'T':
                return False
        elif i == 13 or i == 16:
            if c != u':':
                return False
        elif i == 19:
            if c != u'.':
                return False
        elif i == 23:
            if c != u'Z':
                return False
        elif c < u'0' or c > u'9':
            return False
        i += 1
    return True


cpdef bint is_clean_fast(object rec):
    """A conservative subset of `is_clean_record` (see the module note)."""
    cdef object v, attrs, value, kind
    if rec.error is not None:
        return False
    v = rec.v
    if type(v) is not int or v != 1:
        return False
    if not _ts_ok(rec.ts):
        return False
    if not (_text_ok(rec.event_id) and _text_ok(rec.name) and _opt_text_ok(rec.status)
            and _opt_text_ok(rec.session_id) and _opt_text_ok(rec.correlation_id)):
        return False
    attrs = rec.attrs
    if attrs is not None:
        if type(attrs) is not dict or not attrs:
            return False
        if tuple(<dict>attrs) not in _keys_passed:
            return False
        for value in (<dict>attrs).values():
            kind = type(value)
            if kind is str:
                if not _text_ok(value):
                    return False
            elif not (kind is int or kind is float or kind is bool or value is None):
                return False
    return True


def take_clean(list block, Py_ssize_t i, object encode, list events, object agg,
               Py_ssize_t events_bytes, Py_ssize_t limit, Py_ssize_t max_n):
    """Handle `block[i:]` the way the exporter's common case does, while the
    records are clean (`is_clean_fast`) and fit the part, at most `max_n` of
    them. Returns `(next index, events_bytes)`; the caller handles the record
    at the next index (if any) itself."""
    cdef Py_ssize_t n = len(block)
    cdef Py_ssize_t stop = i + max_n
    cdef Py_ssize_t need, bound
    cdef object rec, data, ts, name, d, lst, key, cnt, cid
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
        while i < stop:
            rec = block[i]
            if not is_clean_fast(rec):
                break
            data = encode(rec)
            need = len(<bytes>data) + 1
            if events_bytes + need * 7 + 4096 + bound > limit:
                break
            events.append(data)
            events_bytes += need
            # PartAggregates.add_clean, inlined (ts_width >= WIRE_TS_WIDTH already)
            ts = rec.ts
            if ts > last:
                last = ts
            if ts < first:
                first = ts
            name = rec.name
            d = rec.duration_ms
            if d is not None:
                lst = durations.get(name)
                if lst is None:
                    durations[name] = [d]
                    bound += _PERF + json_len(name)
                else:
                    (<list>lst).append(d)
            key = (rec.category, name, rec.source, rec.status)
            cnt = combos.get(key)
            if cnt is None:
                agg.bound = bound
                agg._new_combo(key)
                bound = agg.bound
            else:
                combos[key] = cnt + 1
            cid = rec.correlation_id
            if cid is not None and cid not in cids:
                cids.add(cid)
                bound += json_len(cid) + 1
            i += 1
    finally:
        agg._first = first
        agg._last = last
        agg.bound = bound
    return i, events_bytes
