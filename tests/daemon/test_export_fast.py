"""The compiled accelerator of the exporter (daemon/_export_fast.pyx): it is
the one running in this venv, its clean-record proof never accepts what the
Python proof (`is_clean_record`) declines, and the packages it builds are
byte for byte those of the pure-Python loop (hypothesis)."""

from __future__ import annotations

import importlib.machinery
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from branchpy_telemetry.client.event import EventRecord
from branchpy_telemetry.client.redaction import is_clean_record
from branchpy_telemetry.daemon import _export_fast, package_builder
from branchpy_telemetry.daemon.package_builder import EventTooLargeError, build_packages
from branchpy_telemetry.daemon.package_writer import make_header

from ..client.test_privacy_properties import near_clean_records, records

EXAMPLES = settings(max_examples=300, deadline=None, database=None)
REALISTIC = dict(event_id="0192f0e4-1a2b-7c3d-8e4f-0123456789ab", ts="2026-11-28T01:02:03.456Z",
                 category="command", source="cli", name="graph.flow", duration_ms=12.5, status="ok",
                 session_id="b3aa7efe4458a885ab9099a435a240ae", correlation_id="c-1",
                 attrs={"flag_json": True, "files_scanned": 3, "mode": "fast", "engine": "renpy-8.2"})


def test_the_compiled_extension_is_the_exporters_hot_loop_in_this_venv():
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    assert _export_fast.__file__.endswith(suffixes), _export_fast.__file__
    assert package_builder._take_records is _export_fast.take_records


def test_the_compiled_proof_accepts_realistic_records_once_their_keys_are_known():
    rec = EventRecord(**REALISTIC)
    assert is_clean_record(rec)  # passes the attr keys (the Python proof caches them)
    assert _export_fast.is_clean_fast(rec)
    assert _export_fast.is_clean_fast(EventRecord(**{**REALISTIC, "attrs": None, "status": None}))


def test_the_compiled_proof_declines_what_the_python_proof_declines_on_known_cases():
    from branchpy_telemetry.client.event import ErrorInfo

    for change in ({"attrs": {}}, {"v": 2}, {"v": True}, {"error": ErrorInfo(code="E1")},
                   {"name": "C:x.rpy"}, {"attrs": {"file": "game/x.rpy"}}, {"attrs": {"content": "hi"}},
                   {"attrs": {"n": [1]}}, {"status": "x" * 201}, {"ts": "2026-11-28 01:02"},
                   {"session_id": "a\nb"}, {"name": "ゲーム"}, {"ts": "2026-11-28T01:02:03.45６Z"},
                   {"attrs": {"owner": "jane@example.com"}}, {"status": "x@y.io"},
                   {"attrs": {"api_key": "k1"}}, {"attrs": {"password": 5}}):
        rec = EventRecord(**{**REALISTIC, **change})
        assert not is_clean_record(rec), change
        assert not _export_fast.is_clean_fast(rec), change


@EXAMPLES
@given(record=st.one_of(near_clean_records(), records()), warm=st.booleans())
def test_the_compiled_proof_never_accepts_a_record_the_python_proof_declines(record, warm):
    if warm:  # with the Python proof's key cache filled for this record's keys
        is_clean_record(record)
    if _export_fast.is_clean_fast(record):
        assert is_clean_record(record)


HEADER = make_header("00000000-0000-4000-8000-000000000000", "2026-11-28T00:00:00.000Z", None)


def _export(recs: list[EventRecord], cap: int, out: Path) -> tuple[list[bytes], bytes] | str:
    header = HEADER  # one export timestamp for both loops
    try:
        result = build_packages(recs, header=header, cap=cap, output=out / "o.json")
    except EventTooLargeError as e:
        return str(e)
    files = [Path(w[0]).read_bytes() for w in result.written]
    report = Path(result.report_file).read_bytes()
    for n, w in enumerate(result.written):  # package ids are random: name them by position
        files = [f.replace(w[2].encode(), b"PID%d" % n) for f in files]
        report = report.replace(w[2].encode(), b"PID%d" % n)
    return files, report


@EXAMPLES
@given(recs=st.lists(st.one_of(near_clean_records(), near_clean_records(), records()), max_size=40),
       cap=st.sampled_from([3_000, 6_000, 20_000, 1_000_000]))
def test_compiled_and_pure_python_loops_write_identical_packages(recs, cap):
    with tempfile.TemporaryDirectory() as fast_dir, tempfile.TemporaryDirectory() as slow_dir:
        fast = _export(recs, cap, Path(fast_dir))
        saved, package_builder._take_records = package_builder._take_records, None
        try:
            slow = _export(recs, cap, Path(slow_dir))
        finally:
            package_builder._take_records = saved
    assert fast == slow


def _realistic_mix(n: int) -> list[EventRecord]:
    """Clean events, events with an error, with a path in an attr, and both."""
    from branchpy_telemetry.client.event import ErrorInfo

    recs = []
    for i in range(n):
        attrs = {**REALISTIC["attrs"], "files_scanned": i}
        if i % 7 == 3:
            attrs["file"] = ["/home/alice/vn/game/script.rpy", "C:\\Users\\bob\\x.rpy", "game/ch2.rpy",
                             "a:b"][i % 4]  # the last one breaks no rule: kept
        if i % 11 == 4:
            attrs["owner"] = ["alice@studio.example", "pkg@1.2.3"][i % 2]  # the version is kept
        if i % 29 == 6:  # (a secret key sends its event to the Python code: keep them few)
            attrs["auth_token" if i % 2 else "max_tokens"] = f"tok{i}bob" if i % 2 else 512
        error = None
        if i % 5 == 1:
            error = ErrorInfo(code=f"BP-E{1000 + i % 3}", type=["ValueError", None, "C:/x"][i % 3],
                              message=f"cannot parse /home/alice/s{i % 4}.rpy line {i}")
        ts = f"2026-11-28T01:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z"
        recs.append(EventRecord(**{**REALISTIC, "event_id": f"{i:032x}", "ts": ts, "attrs": attrs,
                                   "name": ["graph.flow", "lint", "build"][i % 3], "error": error,
                                   "status": "error" if error else "ok"}))
    return recs


def test_events_with_errors_or_paths_in_attrs_are_taken_by_the_compiled_loop_with_identical_results(
        monkeypatch):
    recs = _realistic_mix(400)
    calls = {"n": 0}
    original = package_builder.sanitize_event

    def counting(*args, **kwargs):
        calls["n"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(package_builder, "sanitize_event", counting)
    for cap in (12_000, 40_000, 1_000_000):
        calls["n"] = 0
        with tempfile.TemporaryDirectory() as fast_dir, tempfile.TemporaryDirectory() as slow_dir:
            fast = _export(recs, cap, Path(fast_dir))
            fast_calls = calls["n"]
            saved, package_builder._take_records = package_builder._take_records, None
            try:
                slow = _export(recs, cap, Path(slow_dir))
            finally:
                package_builder._take_records = saved
        assert fast == slow, cap
        files, report = fast
        assert len(files) > 1 or cap == 1_000_000
        assert b"alice" not in b"".join(files) + report and b"bob" not in b"".join(files) + report
        assert b'"a:b"' in b"".join(files) and b'"pkg@1.2.3"' in b"".join(files)
        assert b'"email_address"' in report and b'"secret_field"' in report
        assert b'"max_tokens":512' in b"".join(files)
        if cap == 1_000_000:  # (near a small cap the exact accounting is Python's)
            # the Python code sees only the error type that needs the full rules, and a first event
            assert fast_calls < len(recs) // 10, fast_calls
