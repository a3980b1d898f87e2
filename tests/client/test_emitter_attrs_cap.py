"""At most MAX_ATTRS_PER_EVENT attrs per event: emit()/track() keep the first
ones and count the rest (never raise); the strict paths (build_event, the
CLI, the daemon's `emit`) refuse more with a usage error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from branchpy_telemetry.client import track
from branchpy_telemetry.client.contracts.errors import EXIT_USAGE, UsageError
from branchpy_telemetry.client.contracts.limits import MAX_ATTRS_PER_EVENT
from branchpy_telemetry.client.emitter.emit import Emitter

BRANCHPY = str(Path(sys.executable).parent / "branchpy")


def written_attrs(paths) -> list[dict]:
    return [json.loads(line).get("attrs") for line in paths.active_spool.read_bytes().splitlines()]


def test_emit_with_100000_attrs_keeps_the_first_ones_and_counts_the_rest(paths):
    emitter = Emitter(paths)
    attrs = {f"a{i}": i for i in range(100_000)}
    assert emitter.emit("feature", "wide", attrs=attrs) is True
    assert emitter.emit("feature", "wide", attrs=attrs) is True
    first = {f"a{i}": i for i in range(MAX_ATTRS_PER_EVENT)}
    assert written_attrs(paths) == [first, first]
    snapshot = emitter.stats.snapshot()
    assert snapshot["dropped_attrs"] == 2 * (100_000 - MAX_ATTRS_PER_EVENT)
    assert snapshot["emitted"] == 2 and sum(snapshot["dropped"].values()) == 0
    assert len(attrs) == 100_000  # the caller's dict is not touched


def test_exactly_the_limit_is_kept_whole(paths):
    emitter = Emitter(paths)
    attrs = {f"k{i}": True for i in range(MAX_ATTRS_PER_EVENT)}
    assert emitter.emit("feature", "x", attrs=attrs)
    assert written_attrs(paths) == [attrs] and emitter.stats.snapshot()["dropped_attrs"] == 0


def test_track_caps_attrs_filled_inside_the_block(paths):
    emitter = Emitter(paths)
    with track("analyze", emitter=emitter) as t:
        for i in range(MAX_ATTRS_PER_EVENT + 10):
            t.attrs[f"k{i}"] = i
    assert len(written_attrs(paths)[0]) == MAX_ATTRS_PER_EVENT
    assert emitter.stats.snapshot()["dropped_attrs"] == 10


def test_build_refuses_more_attrs_than_the_limit(paths):
    with pytest.raises(UsageError, match=f"at most {MAX_ATTRS_PER_EVENT}"):
        Emitter(paths).build("feature", "x", attrs={f"k{i}": i for i in range(MAX_ATTRS_PER_EVENT + 1)})


def test_cli_emit_with_too_many_attrs_exits_2_and_writes_nothing(subprocess_env, paths):
    attrs = [arg for i in range(MAX_ATTRS_PER_EVENT + 1) for arg in ("--attr", f"k{i}={i}")]
    result = subprocess.run([BRANCHPY, "telemetry", "emit", "--category", "feature", "--name", "x", *attrs],
                            env=subprocess_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == EXIT_USAGE
    assert f"at most {MAX_ATTRS_PER_EVENT}" in result.stderr
    assert not paths.active_spool.exists()


def test_daemon_emit_with_too_many_attrs_is_bad_arguments(running_daemon, paths):
    reply = running_daemon.request("emit", {"category": "feature", "name": "x",
                                            "attrs": {f"k{i}": i for i in range(MAX_ATTRS_PER_EVENT + 1)}})
    assert reply.ok is False and reply.error.code == "bad_arguments"
    assert f"at most {MAX_ATTRS_PER_EVENT}" in reply.error.message
    assert not paths.active_spool.exists()
