"""The lock helper: one holder at a time across processes, released on unlock
or when the holder dies."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from branchpy_telemetry.client.infra.file_lock import lock, open_lock_file, try_lock, unlock

TRY_LOCK = textwrap.dedent("""\
    import sys
    from branchpy_telemetry.client.infra.file_lock import open_lock_file, try_lock
    try:
        try_lock(open_lock_file(sys.argv[1]))
    except OSError:
        sys.exit(3)
    """)
WAIT_FOR_LOCK = textwrap.dedent("""\
    import sys
    from branchpy_telemetry.client.infra.file_lock import locked
    with locked(sys.argv[1]):
        print("held", flush=True)
    """)


def other_process_can_take(lock_file) -> bool:
    proc = subprocess.run([sys.executable, "-c", TRY_LOCK, str(lock_file)], timeout=60)
    return proc.returncode == 0


def test_try_lock_refuses_while_another_process_holds_the_lock_and_succeeds_after_unlock(tmp_path):
    lock_file = tmp_path / "daemon.lock"
    fd = open_lock_file(lock_file)
    try:
        try_lock(fd)
        assert not other_process_can_take(lock_file)
        unlock(fd)
        assert other_process_can_take(lock_file)
    finally:
        os.close(fd)
    assert os.stat(lock_file).st_mode & 0o777 == 0o600


def test_locked_waits_for_the_holder_and_then_gets_the_lock(tmp_path):
    lock_file = tmp_path / "counters.json.lock"
    held = open_lock_file(lock_file)
    try:
        lock(held)  # taken before the other process starts
        with subprocess.Popen([sys.executable, "-c", WAIT_FOR_LOCK, str(lock_file)], stdout=subprocess.PIPE,
                              text=True) as waiter:
            try:
                with pytest.raises(subprocess.TimeoutExpired):
                    waiter.wait(timeout=1.0)  # still waiting while we hold the lock
                unlock(held)
                out, _ = waiter.communicate(timeout=60)
            finally:
                waiter.kill()
    finally:
        os.close(held)
    assert waiter.returncode == 0 and out == "held\n"


def test_a_lock_is_released_when_its_holder_dies(tmp_path):
    lock_file = tmp_path / "daemon.lock"
    hold_until_killed = WAIT_FOR_LOCK.replace('print("held", flush=True)',
                                              'print("held", flush=True); sys.stdin.read()')
    with subprocess.Popen([sys.executable, "-c", hold_until_killed, str(lock_file)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout.readline() == "held\n"
            assert not other_process_can_take(lock_file)
        finally:
            holder.kill()
            holder.wait(timeout=60)
    assert other_process_can_take(lock_file)
