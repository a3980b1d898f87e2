"""A private MariaDB server for tests that freeze or stop their database.

`OwnMariaDB(folder)` initializes its own data directory with
`mariadb-install-db`, starts `mariadbd` on a free loopback port (and a unix
socket in a short private folder), and is stopped by its pid. The shared
server on 3306 is never touched. `freeze()` / `thaw()` send SIGSTOP /
SIGCONT: the kernel still accepts connections, nobody answers — a hung
database, exactly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pymysql
import pytest

from ..polling import poll
from ..service_markers import require_service

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnMariaDB:
    def __init__(self, folder: Path):
        self.folder = folder
        self.datadir = folder / "data"
        self.run_dir = Path(tempfile.mkdtemp(prefix="bpmdb-"))  # unix socket paths must stay short
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.frozen = False

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def url(self, database: str, **options: object) -> str:
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"mysql://root@127.0.0.1:{self.port}/{database}" + (f"?{query}" if query else "")

    def start(self, timeout: float = 60.0) -> OwnMariaDB:
        require_service("mysql")
        if not os.path.exists(MARIADBD) or not os.path.exists(INSTALL_DB):
            pytest.fail("mariadbd / mariadb-install-db not found: apt-get install mariadb-server",
                        pytrace=False)
        user = ["--user=root"] if os.geteuid() == 0 else []
        if not self.datadir.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            subprocess.run([INSTALL_DB, "--no-defaults", f"--datadir={self.datadir}", *user,
                            "--auth-root-authentication-method=normal", "--skip-test-db"],
                           check=True, capture_output=True, timeout=120)
        for attempt in range(5):  # a free port can be taken between the probe and the bind: try another
            if attempt or not self.port:  # a restart keeps its port (URLs in use name it)
                self.port = free_port()
            self.proc = subprocess.Popen(
                [MARIADBD, "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}",
                 "--bind-address=127.0.0.1", f"--socket={self.run_dir / 'sock'}",
                 f"--pid-file={self.run_dir / 'pid'}", f"--log-error={self.folder / 'error.log'}", *user,
                 "--skip-log-bin", "--innodb-buffer-pool-size=32M", "--max-connections=200"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self._wait_ready(timeout):
                return self
            self._kill()
        pytest.fail(f"own mariadbd did not start: {self.error_log()[-2000:]}", pytrace=False)

    def _wait_ready(self, timeout: float) -> bool:
        def answered_or_exited() -> str:
            if self.proc.poll() is not None:
                return "exited"
            with contextlib.suppress(pymysql.err.MySQLError):
                pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=1,
                                read_timeout=2).close()
                return "ready"
            return ""

        return poll(answered_or_exited, timeout=timeout, interval=0.1) == "ready"

    def error_log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        self.frozen = False

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.frozen:
            self.thaw()
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.run_dir, ignore_errors=True)
