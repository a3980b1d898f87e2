"""The spool's append/rotate protocol (client/emitter/spool.py), proved with real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime

from branchpy_telemetry.client.contracts.errors import StorageError
from branchpy_telemetry.client.contracts.event import event_decoder
from branchpy_telemetry.client.emitter.emit import Emitter
from branchpy_telemetry.client.emitter.spool import (
    ACTIVE_NAME,
    list_spool_files,
    rotate_spool,
    spool_size_bytes,
)
from branchpy_telemetry.client.emitter.spool_appender import SpoolAppender, SpoolWriteError

WRITER = textwrap.dedent("""
    import json, sys
    from branchpy_telemetry.client.emitter.emit import Emitter
    from branchpy_telemetry.client.contracts.paths import resolve_paths
    writer, count = int(sys.argv[1]), int(sys.argv[2])
    emitter = Emitter(resolve_paths())
    sys.stdin.readline()  # start together
    for seq in range(count):
        emitter.emit("command", "stress", duration_ms=1.5, attrs={"writer": writer, "seq": seq,
                     "pad": "x" * (seq % 97)})
    print(json.dumps(emitter.stats.snapshot()))
""")


def read_events(files):
    events, bad = [], 0
    for path in files:
        for line in path.read_bytes().splitlines():
            try:
                events.append(event_decoder.decode(line))
            except Exception:
                bad += 1
    return events, bad


def test_many_processes_and_a_rotator_lose_no_line_tear_none_and_never_write_a_rotated_file(
        paths, subprocess_env):
    writers, count = 4, 3000
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(w), str(count)], env=subprocess_env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for w in range(writers)
    ]
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    snapshots: dict = {}
    done = threading.Event()
    while not done.is_set():
        rotated = rotate_spool(paths.spool_dir)
        if rotated is not None:
            snapshots[rotated] = rotated.read_bytes()  # right after rotate_spool returned
        done.wait(0.003)
        if all(proc.poll() is not None for proc in procs):
            done.set()
    outputs = [proc.communicate(timeout=60)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * writers
    for out in outputs:
        assert json.loads(out) == {"emitted": count, "dropped": {"write_error": 0, "invalid": 0,
                                                                  "consent": 0}, "dropped_attrs": 0}
    assert len(snapshots) >= 5, "the rotator must have rotated while the writers wrote"
    for path, content in snapshots.items():
        assert path.read_bytes() == content, f"{path.name} changed after its rotation"

    files = list_spool_files(paths.spool_dir)
    events, bad = read_events(files)
    assert bad == 0
    ids = [e.event_id for e in events]
    assert len(ids) == len(set(ids)) == writers * count
    seen = sorted((e.attrs["writer"], e.attrs["seq"]) for e in events)
    assert seen == [(w, s) for w in range(writers) for s in range(count)]


def test_threads_emitting_while_a_thread_rotates_lose_nothing(paths):
    emitter = Emitter(paths)
    threads_n, count = 8, 800
    stop = threading.Event()
    snapshots: dict = {}

    def rotate_loop():
        while not stop.is_set():
            rotated = rotate_spool(paths.spool_dir)
            if rotated is not None:
                snapshots[rotated] = rotated.read_bytes()
            stop.wait(0.002)

    def write(t):
        for seq in range(count):
            emitter.emit("feature", "thread", attrs={"t": t, "seq": seq})

    rotator = threading.Thread(target=rotate_loop)
    rotator.start()
    workers = [threading.Thread(target=write, args=(t,)) for t in range(threads_n)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    rotator.join()
    assert emitter.stats.snapshot()["emitted"] == threads_n * count
    for path, content in snapshots.items():
        assert path.read_bytes() == content
    events, bad = read_events(list_spool_files(paths.spool_dir))
    assert bad == 0
    assert sorted((e.attrs["t"], e.attrs["seq"]) for e in events) == [
        (t, s) for t in range(threads_n) for s in range(count)]


def test_forked_child_reopens_the_spool_and_gets_its_own_session_and_ids(paths):
    emitter = Emitter(paths)
    assert emitter.emit("session", "parent-before-fork")
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(read_fd)
            ok = all(emitter.emit("session", "child", attrs={"seq": i}) for i in range(300))
            os.write(write_fd, b"ok" if ok else b"fail")
        finally:
            os._exit(0)
    os.close(write_fd)
    for i in range(300):
        emitter.emit("session", "parent", attrs={"seq": i})
        if i == 150:
            rotate_spool(paths.spool_dir)
    os.waitpid(pid, 0)
    assert os.read(read_fd, 10) == b"ok"
    os.close(read_fd)
    events, bad = read_events(list_spool_files(paths.spool_dir))
    assert bad == 0
    assert len({e.event_id for e in events}) == len(events) == 601
    child_sessions = {e.session_id for e in events if e.name == "child"}
    parent_sessions = {e.session_id for e in events if e.name != "child"}
    assert len(child_sessions) == len(parent_sessions) == 1 and child_sessions != parent_sessions


def test_writer_reopens_after_rotation_and_rotated_file_keeps_only_earlier_lines(paths):
    emitter = Emitter(paths)
    emitter.emit("command", "first")
    rotated = rotate_spool(paths.spool_dir)
    emitter.emit("command", "second")
    assert [e.name for e in read_events([rotated])[0]] == ["first"]
    assert [e.name for e in read_events([paths.active_spool])[0]] == ["second"]


def test_writer_recreates_an_active_file_deleted_behind_its_back(paths):
    appender = SpoolAppender(paths.spool_dir, recheck_interval_s=0)
    appender.append(b'{"a":1}\n')
    paths.active_spool.unlink()
    appender.append(b'{"a":2}\n')
    assert paths.active_spool.read_bytes() == b'{"a":2}\n'
    appender.close()


def test_spool_files_and_folder_are_private(paths):
    Emitter(paths).emit("command", "x")
    assert paths.spool_dir.stat().st_mode & 0o777 == 0o700
    assert paths.active_spool.stat().st_mode & 0o777 == 0o600


def test_rotate_spool_returns_none_when_there_is_nothing_to_rotate(paths):
    assert rotate_spool(paths.spool_dir) is None  # no folder at all
    paths.spool_dir.mkdir(parents=True)
    assert rotate_spool(paths.spool_dir) is None  # no active file
    paths.active_spool.touch()
    assert rotate_spool(paths.spool_dir) is None  # empty active file
    assert list_spool_files(paths.spool_dir) == [paths.active_spool]


def test_rotated_names_are_unique_and_listed_oldest_first_then_active(paths):
    emitter = Emitter(paths)
    times = [datetime(2026, 11, 28, 1, 0, 0, tzinfo=UTC),
             datetime(2026, 11, 27, 23, 59, 59, 999999, tzinfo=UTC)]
    made = []
    for when in (times[0], times[0], times[1]):
        emitter.emit("command", "x")
        made.append(rotate_spool(paths.spool_dir, now=when))
    emitter.emit("command", "active")
    pid = os.getpid()
    assert [p.name for p in made] == [f"events-20261128T010000000000-{pid}.jsonl",
                                      f"events-20261128T010000000000-{pid}-1.jsonl",
                                      f"events-20261127T235959999999-{pid}.jsonl"]
    (paths.spool_dir / "notes.txt").write_text("not a spool file")
    assert list_spool_files(paths.spool_dir) == [made[2], made[0], made[1], paths.active_spool]


def test_spool_size_bytes_sums_rotated_and_active_files(paths):
    emitter = Emitter(paths)
    assert spool_size_bytes(paths.spool_dir) == 0
    emitter.emit("command", "x")
    rotated = rotate_spool(paths.spool_dir)
    emitter.emit("command", "y")
    expected = rotated.stat().st_size + (paths.spool_dir / ACTIVE_NAME).stat().st_size
    assert spool_size_bytes(paths.spool_dir) == expected > 0


def hold_lock(path):
    """Lock `path` the way a writer stopped mid-write would (a separate open file description)."""
    import fcntl

    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_writer_gives_up_on_a_lock_held_too_long_and_raises_a_spool_write_error(paths):
    appender = SpoolAppender(paths.spool_dir, lock_timeout_s=0.2)
    appender.append(b'{"a":1}\n')
    fd = hold_lock(paths.active_spool)
    try:
        try:
            appender.append(b'{"a":2}\n')
        except SpoolWriteError as exc:
            assert "timed out waiting for the spool lock" in str(exc)
        else:
            raise AssertionError("append wrote through a held lock")
    finally:
        os.close(fd)
    appender.append(b'{"a":3}\n')
    assert paths.active_spool.read_bytes() == b'{"a":1}\n{"a":3}\n'
    appender.close()


def test_emit_counts_a_lock_timeout_as_write_error_instead_of_hanging(paths):
    emitter = Emitter(paths)
    emitter.emit("command", "x")
    emitter._appender.lock_timeout_s = 0.1
    fd = hold_lock(paths.active_spool)
    try:
        assert emitter.emit("command", "y") is False
    finally:
        os.close(fd)
    assert emitter.stats.snapshot()["dropped"]["write_error"] == 1


def test_rotation_waits_for_the_write_in_flight_and_renames_nothing_on_timeout(paths):
    Emitter(paths).emit("command", "x")
    inode = paths.active_spool.stat().st_ino
    fd = hold_lock(paths.active_spool)
    try:
        try:
            rotate_spool(paths.spool_dir, lock_timeout_s=0.2)
        except StorageError as exc:
            assert exc.code == "storage_error" and "stayed locked" in exc.message
        else:
            raise AssertionError("rotated a file a writer was writing")
        assert paths.active_spool.stat().st_ino == inode
        assert list_spool_files(paths.spool_dir) == [paths.active_spool]
    finally:
        os.close(fd)
    assert rotate_spool(paths.spool_dir) is not None
