"""Spool and extension lines cannot take the daemon's memory or its runs.

Anything that can write the spool or the extension's JSONL folder (a buggy
or hostile program running as the user) can write one huge line, or one
nested past the decoder's depth. Before the line limit, two 50 MB lines took
the daemon from 45 to 358 MB during a sync, and a line of arrays nested
100,000 deep failed every export and every auto-mode run. Now such lines are
skipped and counted (`skipped_lines`), the valid lines around them are
delivered, and the daemon's peak memory (VmHWM) stays flat.
"""

from __future__ import annotations

import json

import pytest

from branchpy_telemetry.client.contracts.event import EventRecord, event_encoder
from branchpy_telemetry.client.contracts.limits import MAX_SPOOL_LINE_BYTES
from branchpy_telemetry.client.contracts.timewindow import format_ts, utcnow
from branchpy_telemetry.client.emitter.stamping import new_event_id

BIG_LINE_BYTES = 50 * 1024 * 1024
FLAT_MIB = 40  # peak RSS growth allowed for reading 150 MB of over-long lines (was ~310 MiB)


def event_line(**attrs) -> tuple[str, bytes]:
    rec = EventRecord(event_id=new_event_id(), ts=format_ts(utcnow()), category="command", source="cli",
                      name="analyze", attrs=attrs or None)
    return rec.event_id, event_encoder.encode(rec) + b"\n"


def big_event_line() -> bytes:
    """A valid event whose only fault is its size."""
    head = event_line()[1][:-2] + b',"attrs":{"pad":"'
    return head + b"p" * (BIG_LINE_BYTES - len(head) - 4) + b'"}}\n'


def deep_line() -> bytes:
    return event_line()[1][:-2] + b',"attrs":{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}}\n"


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


@pytest.fixture
def dry_run_daemon(paths, start_daemon):
    """Sync validates and records packages without a backend (auto.dry_run)."""
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text("[telemetry.auto]\ndry_run = true\n")
    return start_daemon("--idle-timeout", "0")


def warm_up(daemon, paths, tmp_path) -> str:
    """One sync and one export, so every module they use is loaded before measuring."""
    warm_id, warm = event_line()
    paths.spool_dir.mkdir(parents=True, exist_ok=True)
    paths.active_spool.write_bytes(warm)
    assert daemon.call("sync")["read_events"] == 1
    daemon.call("export", {"output": str(tmp_path / "warm.json")})
    return warm_id


def export_ids(daemon, output) -> tuple[set[str], int]:
    daemon.call("export", {"output": str(output)})
    summary = json.loads(output.read_text())["summary"]
    return {e["event_id"] for e in summary["events"]}, summary["skipped_lines"]


def test_three_50_mb_lines_are_skipped_with_the_daemons_memory_flat(dry_run_daemon, paths, tmp_path):
    daemon = dry_run_daemon
    warm_id = warm_up(daemon, paths, tmp_path)
    before = peak_rss_mib(daemon.proc.pid)

    first, raw_first = event_line(files=1)
    second, raw_second = event_line(files=2)
    with open(paths.active_spool, "ab") as fh:
        for chunk in (raw_first, big_event_line(), big_event_line(), raw_second):
            fh.write(chunk)
    paths.extension_dir.mkdir(parents=True, exist_ok=True)
    ext_id, ext_raw = event_line(files=3)
    (paths.extension_dir / "events.jsonl").write_bytes(big_event_line() + ext_raw)

    report = daemon.call("sync")
    assert (report["read_events"], report["skipped_lines"]) == (3, 3)
    assert export_ids(daemon, tmp_path / "all.json") == ({warm_id, first, second, ext_id}, 3)
    after = peak_rss_mib(daemon.proc.pid)
    print(f"\ndaemon peak RSS: {before:.1f} MiB before, {after:.1f} MiB after a sync and an export over "
          f"3 lines of {BIG_LINE_BYTES >> 20} MB (line limit {MAX_SPOOL_LINE_BYTES >> 10} KiB)")
    assert after - before < FLAT_MIB
    assert daemon.call("status")["pid"] == daemon.proc.pid


def test_a_line_nested_100000_deep_is_skipped_and_runs_go_on(dry_run_daemon, paths, tmp_path):
    daemon = dry_run_daemon
    warm_id = warm_up(daemon, paths, tmp_path)
    first, raw_first = event_line(files=1)
    second, raw_second = event_line(files=2)
    with open(paths.active_spool, "ab") as fh:
        fh.write(raw_first + deep_line() + raw_second)
    report = daemon.call("sync")
    assert (report["read_events"], report["skipped_lines"]) == (2, 1)
    assert export_ids(daemon, tmp_path / "all.json") == ({warm_id, first, second}, 1)
    assert daemon.call("status")["pid"] == daemon.proc.pid
