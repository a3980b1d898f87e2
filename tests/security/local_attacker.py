"""Another local user, for real: commands run as `nobody` and a fake daemon socket.

`as_other_user()` is the command prefix that drops to `nobody`
(`setpriv --reuid/--regid/--clear-groups`, else `runuser -u nobody`); the
tests run as root, as CI does. `FakeRouter` is what a squatter binds in a
socket folder it made: it accepts connections on a Unix (or TCP) socket,
speaks enough ZMTP 3.0 (greeting + READY, NULL mechanism) that a ZeroMQ
client sends its request, and records every connection and every byte
received. Pure standard library, so it runs under any Python 3 `nobody`
can execute.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..polling import poll

FAKE_ROUTER = r'''
import os, socket, sys, threading
where, record = sys.argv[1], sys.argv[2]
greeting = b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\0") + b"\0" + b"\0" * 31
props = b"\x0bSocket-Type" + len(b"ROUTER").to_bytes(4, "big") + b"ROUTER"
body = b"\x05READY" + props
ready = b"\x04" + bytes([len(body)]) + body
if where.startswith("tcp:"):
    srv = socket.socket(socket.AF_INET)
    srv.bind(("127.0.0.1", 0))
    with open(where[4:], "w") as fh:
        fh.write(str(srv.getsockname()[1]))
else:
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(where)
    os.chmod(where, 0o777)
srv.listen(16)
lock = threading.Lock()
def serve(conn):
    with lock, open(record, "ab") as fh:
        fh.write(b"CONNECT\n")
    try:
        conn.sendall(greeting + ready)
        while True:
            data = conn.recv(65536)
            if not data:
                return
            with lock, open(record, "ab") as fh:
                fh.write(data)
    except OSError:
        pass
open(record, "ab").close()
with open(record + ".ready", "w"):
    pass
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
'''


def as_other_user() -> list[str]:
    """Command prefix that runs as `nobody` (no supplementary groups)."""
    if os.geteuid() != 0:
        pytest.skip("acting as another user needs root (CI runs these tests as root)")
    user = pwd.getpwnam("nobody")
    if shutil.which("setpriv"):
        return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    if shutil.which("runuser"):
        return ["runuser", "-u", "nobody", "--"]
    pytest.skip("neither setpriv nor runuser is installed (util-linux)")


def nobody_uid() -> int:
    return pwd.getpwnam("nobody").pw_uid


def run_as_other_user(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run([*as_other_user(), *command], capture_output=True, text=True, timeout=30)


def python_for_other_user() -> str:
    """This interpreter if `nobody` may run it, else the system's python3."""
    for candidate in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if candidate and run_as_other_user(candidate, "-c", "pass").returncode == 0:
            return candidate
    pytest.skip("no Python interpreter that nobody may execute")


class FakeRouter:
    """A squatter's socket, bound by `nobody`; `received()` is everything any client sent it."""

    def __init__(self, where: str, record: Path):
        self.where, self.record = where, record
        self.proc = subprocess.Popen([*as_other_user(), python_for_other_user(), "-c", FAKE_ROUTER, where,
                                      str(record)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ready = Path(str(record) + ".ready")
        poll(lambda: ready.exists() or self.proc.poll() is not None, timeout=20)
        if not ready.exists():
            self.stop()
            raise AssertionError(f"the fake router did not start: {self.proc.stderr.read()!r}")

    def received(self) -> bytes:
        return self.record.read_bytes()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def make_shared_dir(parent: str = "/tmp") -> Path:
    """A folder like /tmp (mode 1777, root's): every user may create in it, none may
    remove another's entries."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="bp-shared-", dir=parent))
    path.chmod(0o1777)
    return path
