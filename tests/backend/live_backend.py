"""Real backend servers for the HTTP tests.

`start_backend()` runs `branchpy-telemetry-backend serve --port 0` as a
subprocess (waitress, the production path) and waits for its "serving on"
line. Keys are
created with the same code as `keys create` and written to the database the
server uses.
"""

from __future__ import annotations

import functools
import os
import selectors
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from branchpy_telemetry.backend.auth import generate_key
from branchpy_telemetry.backend.sinks.base import Sink
from branchpy_telemetry.backend.sinks.registry import open_sink
from branchpy_telemetry.client.contracts.timewindow import utcnow

from ..conftest import console_script

SCOPES = ("ingest", "read", "admin")


@dataclass
class LiveBackend:
    url: str
    keys: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    db_url: str | None = None

    @property
    def api(self) -> str:
        return self.url + "/api/telemetry"

    def headers(self, scope: str = "admin", **extra: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[scope], **extra}

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""


def add_keys(sink: Sink) -> dict[str, str]:
    keys = {}
    for scope in SCOPES:
        key, record = generate_key(scope, f"test-{scope}", utcnow())
        sink.add_api_key(record)
        keys[scope] = key
    return keys


def seed_keys(db_url: str) -> dict[str, str]:
    sink = open_sink(db_url)
    try:
        return add_keys(sink)
    finally:
        sink.close()


IGNORE_SIGINT_THEN_EXEC = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                           "os.execv(sys.argv[1], sys.argv[1:])")


def start_backend(tmp_path: Path, env: dict[str, str], db_urls: list[str], *,
                  settings_env: dict[str, str] | None = None, workers: int = 4,
                  timeout: float = 20.0, pass_db: bool = True, sigint_ignored: bool = False) -> LiveBackend:
    """`serve --port 0` in a subprocess; returns once it is listening. `sigint_ignored`
    starts it with SIGINT ignored, as a background job of a script would be."""
    keys = seed_keys(db_urls[0])
    tmp_path.mkdir(parents=True, exist_ok=True)
    log_path = tmp_path / f"backend-{time.monotonic_ns()}.log"
    cmd = [console_script("branchpy-telemetry-backend"), "serve", "--port", "0", "--workers", str(workers)]
    for url in db_urls if pass_db else []:
        cmd += ["--db", url]
    if sigint_ignored:  # exec keeps an ignored disposition
        cmd = [sys.executable, "-c", IGNORE_SIGINT_THEN_EXEC, *cmd]
    proc_env = {**env, **(settings_env or {})}
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed below, the child keeps its own fd
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log_file, env=proc_env, cwd=tmp_path)
    finally:
        log_file.close()
    line = _read_line(proc, timeout)
    if not line.startswith("serving on "):
        proc.kill()
        proc.wait()
        proc.stdout.close()
        raise AssertionError(f"backend did not start: {line!r}\n{log_path.read_text(errors='replace')}")
    url = line.split()[2]
    return LiveBackend(url=url, keys=keys, proc=proc, log_path=log_path)


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buf = b""
    try:
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return buf.decode(errors="replace") or "<timeout>"
            chunk = proc.stdout.read1(4096)
            if not chunk:
                return buf.decode(errors="replace") or f"<exited {proc.wait()}>"
            buf += chunk
    finally:
        sel.close()
    return buf.split(b"\n", 1)[0].decode()


@functools.cache
def gzip_bomb(mib: int) -> bytes:
    """A valid single-member gzip of `mib` MiB of zeros, built without compressing
    it all: one full-flushed deflate block of 1 MiB of zeros, repeated (each block
    starts with no history, so the copies are identical), plus a correct trailer."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    block = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    final = comp.flush()
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + block * mib + final + struct.pack("<II", crc, (mib << 20) & 0xFFFFFFFF)


def clean_env(home: Path, **settings: str) -> dict[str, str]:
    """The environment for a backend subprocess: no BRANCHPY_TELEMETRY_* leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANCHPY_TELEMETRY")}
    env.pop("DO_NOT_TRACK", None)
    env["BRANCHPY_TELEMETRY_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    env.update({f"BRANCHPY_TELEMETRY_BACKEND_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def start_sqlite_backend(tmp_path: Path, **settings: str) -> LiveBackend:
    """`serve` on a fresh SQLite file (the default sink), settings given as env."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{tmp_path / 'events.db'}"
    backend = start_backend(tmp_path, clean_env(tmp_path / "home", **settings), [db_url])
    backend.db_url = db_url
    return backend


def process_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")

