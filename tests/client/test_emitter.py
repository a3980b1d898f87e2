"""emit(), track(), build_event()/write_event() and consent."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
import uuid

import msgspec
import pytest

from branchpy_telemetry.client import emit, track  # the public API
from branchpy_telemetry.client.contracts.consent import consent_withdrawn
from branchpy_telemetry.client.contracts.errors import EXIT_USAGE, UsageError
from branchpy_telemetry.client.contracts.event import ErrorInfo, event_decoder
from branchpy_telemetry.client.contracts.paths import resolve_paths
from branchpy_telemetry.client.emitter.emit import Emitter, build_event, emitter_stats, write_event

TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class CodedError(Exception):
    code = "BP-E1042"


def lines(paths):
    return [json.loads(line) for line in paths.active_spool.read_bytes().splitlines()]


def test_emit_writes_one_contract_line_with_version_uuid7_and_millisecond_utc_ts(paths):
    emitter = Emitter(paths, session_id="s-1")
    before = time.time()
    assert emitter.emit("command", "analyze", duration_ms=412.5, status="ok", correlation_id="c-1",
                        attrs={"flag_json": True, "files_scanned": 120})
    [line] = lines(paths)
    assert list(line)[:6] == ["v", "event_id", "ts", "category", "source", "name"]
    assert line["v"] == 1
    assert {k: line[k] for k in ("category", "source", "name", "duration_ms", "status",
                                 "session_id", "correlation_id", "attrs")} == {
        "category": "command", "source": "cli", "name": "analyze", "duration_ms": 412.5,
        "status": "ok", "session_id": "s-1", "correlation_id": "c-1",
        "attrs": {"flag_json": True, "files_scanned": 120}}
    event_id = uuid.UUID(line["event_id"])
    assert event_id.version == 7 and event_id.variant == uuid.RFC_4122
    assert abs((event_id.int >> 80) / 1000 - before) < 5
    assert TS_RE.match(line["ts"])
    assert event_decoder.decode(paths.active_spool.read_bytes().splitlines()[0]).name == "analyze"


def test_event_ids_are_unique_and_time_ordered_within_a_process(paths):
    emitter = Emitter(paths)
    for _ in range(2000):
        emitter.emit("feature", "x")
    ids = [line["event_id"] for line in lines(paths)]
    assert len(set(ids)) == 2000
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)  # the millisecond part


def test_emit_records_an_exception_or_error_dict_as_code_type_message(paths):
    emitter = Emitter(paths)
    emitter.emit("error", "load", error=CodedError("cannot read /home/ana/game/script.rpy"))
    emitter.emit("error", "load", error={"code": 7, "type": "IOError", "message": "m"})
    emitter.emit("error", "load", error=ErrorInfo(code="X"))
    assert [line["error"] for line in lines(paths)] == [
        {"code": "BP-E1042", "type": "CodedError", "message": "cannot read /home/ana/game/script.rpy"},
        {"code": "7", "type": "IOError", "message": "m"},
        {"code": "X"},
    ]


def test_track_records_ok_status_monotonic_duration_and_attrs_filled_inside(paths):
    emitter = Emitter(paths)
    with track("analyze", attrs={"flag_json": True}, emitter=emitter) as t:
        t.attrs["files_scanned"] = 120
        time.sleep(0.02)  # deliberate pause: the measured work (track() reads the real monotonic clock)
    [line] = lines(paths)
    assert line["category"] == "command" and line["name"] == "analyze" and line["status"] == "ok"
    assert 20 <= line["duration_ms"] < 5000
    assert line["attrs"] == {"flag_json": True, "files_scanned": 120}
    assert "error" not in line


def test_track_reraises_the_same_exception_and_records_code_type_message(paths):
    emitter = Emitter(paths)
    raised = CodedError("boom at line 3")
    with pytest.raises(CodedError) as info, track("export", category="feature", emitter=emitter,
                                                  correlation_id="c-9"):
        raise raised
    assert info.value is raised
    [line] = lines(paths)
    assert line["status"] == "error" and line["category"] == "feature" and line["correlation_id"] == "c-9"
    assert line["error"] == {"code": "BP-E1042", "type": "CodedError", "message": "boom at line 3"}
    assert line["duration_ms"] >= 0


def test_track_counts_sys_exit_zero_as_ok_and_nonzero_as_error(paths):
    emitter = Emitter(paths)
    with pytest.raises(SystemExit), track("quit", emitter=emitter):
        sys.exit(0)
    with pytest.raises(SystemExit), track("quit", emitter=emitter):
        sys.exit(2)
    first, second = lines(paths)
    assert first["status"] == "ok" and "error" not in first
    assert second["status"] == "error" and second["error"] == {"code": "2", "type": "SystemExit",
                                                               "message": "2"}


def test_track_never_raises_its_own_failure_when_the_spool_is_unwritable(paths):
    paths.spool_dir.parent.mkdir(parents=True)
    paths.spool_dir.write_text("not a folder")
    emitter = Emitter(paths)
    with track("analyze", emitter=emitter):
        pass
    assert emitter.stats.snapshot()["dropped"]["write_error"] == 1


@pytest.mark.parametrize("fields, message", [
    ({"category": "bogus"}, "invalid category 'bogus'"),
    ({"source": "browser"}, "invalid source 'browser'"),
    ({"name": ""}, "invalid event name ''"),
    ({"name": "two\nlines"}, "invalid event name"),
    ({"duration_ms": "12"}, "invalid duration_ms '12'"),
    ({"duration_ms": -1}, "invalid duration_ms -1"),
    ({"duration_ms": float("nan")}, "invalid duration_ms nan"),
    ({"duration_ms": 2e12}, "invalid duration_ms 2000000000000.0"),
    ({"duration_ms": True}, "invalid duration_ms True"),
    ({"status": 3}, "invalid status 3"),
    ({"session_id": 5}, "invalid session_id 5"),
    ({"attrs": ["a"]}, "invalid attrs ['a']"),
    ({"error": {"stack": "x"}}, "invalid error field(s): stack"),
    ({"error": 42}, "invalid error 42"),
    ({"colour": "red"}, "unknown event field(s): colour"),
])
def test_build_event_rejects_bad_input_with_usage_error_and_emit_counts_it_invalid(
        telemetry_home, fields, message):
    args = {"category": "command", "name": "analyze", **fields}
    with pytest.raises(UsageError) as info:
        build_event(**args)
    assert message in info.value.message
    assert info.value.code == "bad_arguments" and info.value.exit_code == EXIT_USAGE
    before = emitter_stats()["dropped"]["invalid"]
    assert emit(**args) is False
    assert emitter_stats()["dropped"]["invalid"] == before + 1
    assert not resolve_paths().active_spool.exists()


def test_emitter_with_a_bad_default_source_is_refused_and_daemon_source_is_recorded(paths):
    with pytest.raises(UsageError, match="invalid source 'vscode'"):
        Emitter(paths, source="vscode")
    Emitter(paths, source="daemon").emit("system", "daemon.start")
    assert lines(paths)[0]["source"] == "daemon"


def test_unencodable_attrs_or_oversized_lines_are_dropped_as_invalid_without_raising(paths):
    class Unprintable:
        def __str__(self):
            raise RuntimeError("no text")

    emitter = Emitter(paths)
    assert emitter.emit("feature", "x", attrs={"obj": Unprintable()}) is False
    assert emitter.emit("feature", "x", attrs={"big": "z" * 70_000}) is False
    assert emitter.stats.snapshot() == {"emitted": 0, "dropped": {"write_error": 0, "invalid": 2,
                                                                   "consent": 0}, "dropped_attrs": 0}
    assert not paths.active_spool.exists()


def test_attrs_values_of_other_types_are_kept_as_their_text(paths):
    from decimal import Decimal
    from pathlib import PurePosixPath

    emitter = Emitter(paths)
    assert emitter.emit("feature", "x", attrs={"ratio": Decimal("0.5"), "where": PurePosixPath("a/b.rpy"),
                                               ("tuple", "key"): 1, "n": 3, "ok": True, "none": None})
    assert lines(paths)[0]["attrs"] == {"ratio": "0.5", "where": "a/b.rpy", "('tuple', 'key')": 1, "n": 3,
                                        "ok": True, "none": None}


def test_build_event_then_write_event_appends_to_the_default_spool(telemetry_home):
    record = build_event("command", "analyze", duration_ms=12, attrs={"k": "v"})
    assert record.duration_ms == 12.0
    before = emitter_stats()["emitted"]
    assert write_event(record) is True
    assert emitter_stats()["emitted"] == before + 1
    [line] = lines(resolve_paths())
    assert line["event_id"] == record.event_id and line["attrs"] == {"k": "v"}


def test_default_emitter_follows_a_changed_telemetry_home(tmp_path, telemetry_home, monkeypatch):
    emit("command", "one")
    other = tmp_path / "other-home"
    monkeypatch.setenv("BRANCHPY_TELEMETRY_HOME", str(other))
    emit("command", "two")
    assert [line["name"] for line in lines(resolve_paths())] == ["two"]
    monkeypatch.setenv("BRANCHPY_TELEMETRY_HOME", str(telemetry_home))
    assert [line["name"] for line in lines(resolve_paths())] == ["one"]


@pytest.mark.parametrize("env, withdrawn", [
    ({}, False),
    ({"DO_NOT_TRACK": "1"}, True),
    ({"DO_NOT_TRACK": "true"}, True),
    ({"DO_NOT_TRACK": " YES "}, True),
    ({"DO_NOT_TRACK": "0"}, False),
    ({"DO_NOT_TRACK": ""}, False),
    ({"BRANCHPY_TELEMETRY": "off"}, True),
    ({"BRANCHPY_TELEMETRY": "OFF"}, True),
    ({"BRANCHPY_TELEMETRY": "0"}, True),
    ({"BRANCHPY_TELEMETRY": "false"}, True),
    ({"BRANCHPY_TELEMETRY": "no"}, True),
    ({"BRANCHPY_TELEMETRY": "on"}, False),
    ({"DO_NOT_TRACK": "0", "BRANCHPY_TELEMETRY": "off"}, True),
])
def test_consent_withdrawn_reads_do_not_track_and_branchpy_telemetry(env, withdrawn):
    assert consent_withdrawn(env) is withdrawn


@pytest.mark.parametrize("var, value", [("DO_NOT_TRACK", "1"), ("BRANCHPY_TELEMETRY", "off")])
def test_withdrawn_consent_makes_emit_and_track_write_nothing(paths, monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    assert consent_withdrawn() is True
    emitter = Emitter(paths)
    assert emitter.emit("command", "analyze") is False
    with track("analyze", emitter=emitter):
        pass
    assert emitter.write(emitter.build("command", "x")) is False
    assert emitter.stats.snapshot()["dropped"]["consent"] == 3
    assert not paths.spool_dir.exists()  # not even the folder


def run_child(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=60)


def test_import_touches_no_disk_and_first_emit_creates_the_spool(subprocess_env, telemetry_home):
    proc = run_child("""
        import os, sys
        import branchpy_telemetry.client as client
        home = os.environ["BRANCHPY_TELEMETRY_HOME"]
        assert os.listdir(home) == [], os.listdir(home)
        assert client.emit("session", "start")
        print(sorted(os.listdir(os.path.join(home, "state", "spool"))))
    """, subprocess_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['events.jsonl', 'rotation.gen']"


def test_session_id_comes_from_branchpy_session_id_else_one_random_per_process(subprocess_env, paths):
    code = "from branchpy_telemetry.client import emit; emit('session', 'a'); emit('session', 'b')"
    assert run_child(code, dict(subprocess_env, BRANCHPY_SESSION_ID="parent-7")).returncode == 0
    assert run_child(code, subprocess_env).returncode == 0
    assert run_child(code, subprocess_env).returncode == 0
    sessions = [line["session_id"] for line in lines(paths)]
    assert sessions[:2] == ["parent-7", "parent-7"]
    assert sessions[2] == sessions[3] != sessions[4] == sessions[5]
    assert all(re.fullmatch(r"[0-9a-f]{32}", s) for s in sessions[2:])


def test_emitter_stats_has_the_documented_shape():
    stats = emitter_stats()
    assert set(stats) == {"emitted", "dropped", "dropped_attrs"}
    assert set(stats["dropped"]) == {"write_error", "invalid", "consent"}
    assert msgspec.json.encode(stats)


def test_event_ids_stay_unique_when_the_clock_steps_back_or_the_counter_wraps():
    from branchpy_telemetry.client.emitter.stamping import EventStamper

    now = [1_764_291_723_456 * 1_000_000]
    stamper = EventStamper(clock=lambda: now[0])
    ids = [stamper.stamp()[1] for _ in range(5000)]  # one millisecond: the 12-bit counter wraps
    now[0] -= 2_000 * 1_000_000  # NTP steps the clock back two seconds...
    ids += [stamper.stamp()[1] for _ in range(100)]
    now[0] += 2_000 * 1_000_000  # ...and time reaches the same millisecond again
    ids += [stamper.stamp()[1] for _ in range(100)]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 7 and uuid.UUID(i).variant == uuid.RFC_4122 for i in ids)


def test_ts_is_the_same_millisecond_as_the_event_id():
    from datetime import UTC, datetime

    from branchpy_telemetry.client.emitter.stamping import EventStamper

    for ms in (0, 999, 1_764_291_723_000, 1_764_291_723_999, 1_764_291_724_001):
        ts, event_id = EventStamper(clock=lambda ms=ms: ms * 1_000_000 + 999_999).stamp()
        assert uuid.UUID(event_id).int >> 80 == ms
        assert ts == datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
