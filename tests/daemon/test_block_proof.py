"""The exporter's block proof gives exactly the record proof's answer: `dirty_positions` is
`[i for i, r in enumerate(block) if not is_clean_record(r)]`, through its block-level checks,
its Python per-record loop and the compiled loop alike; the compiled gathering of aggregate
inputs equals the Python one."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from branchpy_telemetry.client.contracts.declared import STATUS_SET, is_clean_record
from branchpy_telemetry.client.contracts.event import ErrorInfo, EventRecord

# built at install time (the test environment has a C compiler; without one the Python loops run)
from branchpy_telemetry.daemon.export import _export_scan as compiled  # noqa: E402
from branchpy_telemetry.daemon.export import aggregates, block_proof
from branchpy_telemetry.daemon.export.aggregates import gather_in_python
from branchpy_telemetry.daemon.export.block_proof import dirty_positions

from ..client.test_privacy_properties import TS, UUID, near_clean_records, policy


@pytest.mark.slow
@settings(max_examples=300, deadline=None, database=None)
@given(block=st.lists(near_clean_records(), max_size=30))
def test_the_block_proof_agrees_with_the_record_proof(block):
    checker = policy()
    expected = [i for i, rec in enumerate(block) if not is_clean_record(rec, checker)]
    assert dirty_positions(block, checker) == expected
    assert python_dirty_positions(block, policy()) == expected


@pytest.mark.slow
@settings(max_examples=300, deadline=None, database=None)
@given(block=st.lists(near_clean_records(), max_size=30))
def test_the_compiled_loop_and_the_python_loop_find_the_same_records(block):
    checker = policy()
    compiled_answer = compiled.record_scan(block, checker.checks_by_event, STATUS_SET, checker.good_ids,
                                           checker.ref_id_ok)
    assert compiled_answer == python_dirty_positions(block, policy())


def python_dirty_positions(block, checker):
    """`dirty_positions` without the compiled loop: the block checks, then `scan_records`."""
    saved, block_proof.record_scan = block_proof.record_scan, None
    try:
        return dirty_positions(block, checker)
    finally:
        block_proof.record_scan = saved


def test_the_exporter_uses_the_compiled_loop_when_it_is_built():
    assert block_proof.record_scan is compiled.record_scan


GOOD = EventRecord(event_id=UUID, ts=TS, category="command", source="cli", name="analyze", status="ok",
                   session_id="b3aa7efe4458a885ab9099a435a240ae", attrs={"files": 3, "mode": "fast"})


@pytest.mark.parametrize("change", [
    {"event_id": UUID[:-1] + "X"}, {"ts": "2026-11-28T01:02:03Z"}, {"status": "maybe"},
    {"session_id": "vscode-1"}, {"correlation_id": "c-1"}, {"v": 2}, {"name": "thesis"},
    {"attrs": {"files": -1}}, {"attrs": {"path": "x"}}, {"attrs": {}}, {"error": ErrorInfo(code="BP-E1000")},
], ids=lambda c: next(iter(c)))
@pytest.mark.parametrize("where", [0, 5, 9])
def test_one_bad_record_anywhere_in_a_realistic_block_is_found(change, where):
    block = [GOOD] * 10
    block[where] = msgspec.structs.replace(GOOD, **change)
    assert dirty_positions(block, policy()) == [where]
    assert python_dirty_positions(block, policy()) == [where]


@settings(max_examples=200, deadline=None, database=None)
@given(block=st.lists(near_clean_records(), max_size=30))
def test_the_compiled_gathering_equals_the_python_one(block):
    fast, slow = compiled.gather(block), gather_in_python(block)
    assert fast[:3] == slow[:3] and fast[4] == slow[4]
    assert fast[3] == dict(slow[3])


def test_the_aggregates_use_the_compiled_gathering_when_it_is_built():
    assert aggregates.gather is compiled.gather
