"""Shared pieces of the delivery acceptance tests: a real backend
(`branchpy-telemetry-backend serve` on SQLite, an ingest key made by
`keys create --json`), emitting processes, the CLI as a subprocess, and what
the backend stored (read straight from its database)."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from branchpy_telemetry.client.contracts.config import set_value_in_file

from ..backend.live_backend import LiveBackend, clean_env, start_backend
from ..conftest import console_script

EMITTER = textwrap.dedent("""
    import sys
    from branchpy_telemetry.client.emitter.emit import build_event, write_event
    import time
    worker, n, out, pause = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    ids = []
    for i in range(n):
        if pause and i % 50 == 0:
            time.sleep(pause)  # deliberate pause: the events are spread over the run
        rec = build_event("command", "analyze", duration_ms=float(i % 97) + 0.5, status="ok",
                          attrs={"workers": worker + 1, "files_scanned": i})
        if not write_event(rec):
            raise SystemExit(f"event {i} not written")
        ids.append(rec.event_id)
    with open(out, "w") as fh:
        fh.write("\\n".join(ids))
""")


def start_live_backend(tmp_path: Path) -> tuple[LiveBackend, str]:
    """A backend on a fresh SQLite file plus an ingest key created by the real `keys create`."""
    db_url = f"sqlite:///{tmp_path / 'events.db'}"
    backend = start_backend(tmp_path, clean_env(tmp_path / "home"), [db_url])
    backend.db_url = db_url
    command = [console_script("branchpy-telemetry-backend"), "keys", "create", "--scope", "ingest",
               "--db", db_url, "--json"]
    env = clean_env(tmp_path / "home")
    made = subprocess.run(command, capture_output=True, text=True, timeout=30, env=env)
    assert made.returncode == 0, made.stderr
    return backend, json.loads(made.stdout.strip().splitlines()[-1])["key"]


def stored_event_ids(backend: LiveBackend) -> list[str]:
    """Every event_id row in the backend's database (duplicates would show twice)."""
    path = backend.db_url.removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
        return [row[0] for row in conn.execute("SELECT event_id FROM events")]


def dead_endpoint() -> str:
    """An endpoint where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/api/telemetry"


def configure(config_file: Path, **values) -> None:
    """Write config keys (dotted names with `__` for dots: telemetry__mode="auto")."""
    for name, value in values.items():
        set_value_in_file(config_file, name.replace("__", "."), value)


def run_cli(env: dict[str, str], *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    return subprocess.run([console_script("branchpy"), "telemetry", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def start_emitters(env: dict[str, str], workdir: Path, workers: int, per_worker: int,
                   pause_every_50: float = 0.0) -> list:
    """`workers` emitting processes; each sleeps `pause_every_50` s every 50 events (spreads them in time)."""
    procs = []
    for w in range(workers):
        out = workdir / f"emitted-{w}-{uuid.uuid4().hex[:8]}.txt"
        proc = subprocess.Popen([sys.executable, "-c", EMITTER, str(w), str(per_worker), str(out),
                                 str(pause_every_50)], env=env)
        procs.append((proc, out))
    return procs


def wait_emitters(procs: list, timeout: float = 120.0) -> list[str]:
    ids: list[str] = []
    for proc, out in procs:
        assert proc.wait(timeout) == 0
        ids += [line for line in out.read_text().splitlines() if line]
    return ids


def emit_events(env: dict[str, str], workdir: Path, n: int, workers: int = 1) -> list[str]:
    """Emit n events from `workers` real processes; returns their event ids."""
    return wait_emitters(start_emitters(env, workdir, workers, n // workers))
