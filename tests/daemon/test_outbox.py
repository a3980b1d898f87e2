"""The persistent outbox: atomic files, oldest first, bounded with counted drops, quarantine."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from branchpy_telemetry.client.contracts.errors import StorageError
from branchpy_telemetry.client.infra.atomic_write import temp_path_for, write_atomic
from branchpy_telemetry.daemon.counters import CounterStore
from branchpy_telemetry.daemon.delivery.outbox import STALE_TEMP_SECONDS, Outbox, read_package_head

from . import recording_server as rs

MB = 1024 * 1024


def test_added_packages_are_listed_oldest_first_with_their_ids(paths):
    outbox = Outbox(paths, 10 * MB)
    ids = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(3)]
    for pid in ids:
        outbox.add(rs.make_package_bytes(2, package_id=pid))
    pending = outbox.pending()
    assert [e.package_id for e in pending] == ids
    assert [e.created_ns for e in pending] == sorted(e.created_ns for e in pending)
    assert all(Path(e.path).parent == paths.outbox_dir for e in pending)


def test_outbox_survives_a_restart(paths):
    entry = Outbox(paths, 10 * MB).add(rs.make_package_bytes(2))
    assert Outbox(paths, 10 * MB).pending() == [entry]


def test_adding_a_file_copies_it_and_leaves_the_original(paths, tmp_path):
    source = tmp_path / "rc-metrics.json"
    source.write_bytes(rs.make_package_bytes(3))
    entry = Outbox(paths, 10 * MB).add(source)
    assert Path(entry.path).read_bytes() == source.read_bytes() and source.exists()


def test_adding_the_same_package_id_twice_keeps_one_copy(paths):
    outbox = Outbox(paths, 10 * MB)
    data = rs.make_package_bytes(2)
    assert outbox.add(data) == outbox.add(data)
    assert len(outbox.pending()) == 1


def test_a_crash_mid_write_leaves_no_visible_half_file(paths):
    outbox = Outbox(paths, 10 * MB)
    outbox.add(rs.make_package_bytes(1))
    # What a crash between write and rename leaves behind: a hidden temp file.
    half = temp_path_for(paths.outbox_dir / "00000000000000000001-crashed.json")
    half.write_bytes(b'{"package_id": "crashed", "summ')
    assert [e.package_id for e in Outbox(paths, 10 * MB).pending()] != ["crashed"]
    assert len(Outbox(paths, 10 * MB).pending()) == 1
    # old enough leftovers are swept on request (start-up, deliveries, housekeeping), never by opening
    old = time.time() - STALE_TEMP_SECONDS - 10
    os.utime(half, (old, old))
    outbox = Outbox(paths, 10 * MB)
    assert half.exists()
    outbox.sweep_stale_temp_files()
    assert not half.exists()


def test_write_atomic_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "x.json"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two" and os.listdir(tmp_path) == ["x.json"]


def test_bound_drops_oldest_first_and_counts_every_drop(paths):
    sizes = len(rs.make_package_bytes(4))
    outbox = Outbox(paths, int(sizes * 2.5))  # room for two packages
    entries = [outbox.add(rs.make_package_bytes(4)) for _ in range(5)]
    assert [e.name for e in outbox.pending()] == [e.name for e in entries[-2:]]
    assert outbox.total_bytes() <= outbox.max_total_bytes
    counters = json.loads(paths.counters_file.read_text())
    assert counters["dropped.outbox_full.packages"] == 3
    assert counters["dropped.outbox_full.events"] == 12
    # counters persist across instances and keep adding up
    Outbox(paths, int(sizes * 2.5)).add(rs.make_package_bytes(4))
    assert CounterStore(paths.counters_file).snapshot()["dropped.outbox_full.packages"] == 4


def test_a_single_package_larger_than_the_bound_is_still_kept(paths):
    outbox = Outbox(paths, 100)
    outbox.add(rs.make_package_bytes(2))
    newest = outbox.add(rs.make_package_bytes(2))
    assert outbox.pending() == [newest]


def test_mark_delivered_removes_the_package(paths):
    outbox = Outbox(paths, 10 * MB)
    entry = outbox.add(rs.make_package_bytes(1))
    outbox.mark_delivered(entry, "sha256:abc")
    assert outbox.pending() == [] and not Path(entry.path).exists()


def test_quarantine_moves_the_package_with_its_reason(paths):
    outbox = Outbox(paths, 10 * MB)
    entry = outbox.add(rs.make_package_bytes(3))
    details = [{"pointer": "/summary/events/0/attrs/x", "rule": "raw_path"}]
    target = outbox.quarantine(entry, "package breaks privacy rules", code="privacy_violation",
                               status_code=422, details=details)
    assert outbox.pending() == [] and target.parent == paths.quarantine_dir and target.exists()
    [(path, reason)] = outbox.quarantined()
    assert path == target and reason["code"] == "privacy_violation" and reason["details"] == details
    assert reason["reason"] == "package breaks privacy rules" and reason["status_code"] == 422
    counters = CounterStore(paths.counters_file).snapshot()
    assert counters["quarantined.packages"] == 1 and counters["quarantined.events"] == 3


_FULL_DISK_CHILD = """
import resource, signal, sys
from branchpy_telemetry.client.contracts.errors import StorageError
from branchpy_telemetry.client.contracts.paths import resolve_paths
from branchpy_telemetry.daemon.delivery.outbox import Outbox
data = sys.stdin.buffer.read()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a real write failure (EFBIG), like a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    Outbox(resolve_paths(), 10 * 1024 * 1024).add(data)
except StorageError as exc:
    print(exc.code, exc.message)
    sys.exit(0)
sys.exit("no StorageError")
"""


def test_a_write_failure_in_the_outbox_is_a_storage_error_and_leaves_no_half_file(paths, subprocess_env):
    """Works as root too (permission bits would not): the file-size limit fails the write itself."""
    import subprocess
    import sys

    package = rs.make_package_bytes(3, pad_events_to=64 * 1024)
    Outbox(paths, 10 * MB)  # the folder exists
    result = subprocess.run([sys.executable, "-c", _FULL_DISK_CHILD], input=package, env=subprocess_env,
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().startswith("storage_error")
    assert Outbox(paths, 10 * MB).pending() == []
    assert [p for p in paths.outbox_dir.iterdir() if p.stat().st_size > 0] == []


def test_outbox_on_a_file_instead_of_a_folder_is_a_storage_error(paths):
    paths.data_dir.mkdir(parents=True)
    paths.outbox_dir.write_text("not a folder")
    with pytest.raises(StorageError, match="outbox"):
        Outbox(paths, 10 * MB).add(rs.make_package_bytes(1))


def test_read_package_head_is_lenient():
    assert read_package_head(b"garbage") == (None, 0)
    pid, events = read_package_head(rs.make_package_bytes(7, package_id="p-1"))
    assert (pid, events) == ("p-1", 7)


def test_counter_store_ignores_a_corrupt_file(tmp_path):
    store = CounterStore(tmp_path / "counters.json")
    (tmp_path / "counters.json").write_text("{torn")
    assert store.increment("uploaded.events", 5) == 5
    assert store.snapshot() == {"uploaded.events": 5}


def test_from_config_bounds_by_retention_max_total_mb_minus_other_data(paths):
    from branchpy_telemetry.client.contracts.config import load_config

    config = load_config(None, env={}, overrides={"telemetry.retention.max_total_mb": 3})
    assert Outbox.from_config(paths, config).max_total_bytes == 3 * MB
    assert Outbox.from_config(paths, config, other_bytes=MB).max_total_bytes == 2 * MB
