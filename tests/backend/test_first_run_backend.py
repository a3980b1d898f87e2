"""What a new operator meets with `branchpy-telemetry-backend`, driven as a subprocess: a port in
use is a sentence with a way out, a person at a terminal gets quiet output, services get
structured logs (with journald priorities), `migrate` says what it created, unknown query
parameters are refused by name, and browsers get their icon."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import socket
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from branchpy_telemetry.backend.sinks.mysql_schema import SCHEMA_VERSION as MYSQL_SCHEMA
from branchpy_telemetry.backend.sinks.sqlite_schema import SCHEMA_VERSION as SQLITE_SCHEMA

from ..conftest import console_script
from .conftest import _database_url
from .live_backend import _read_line, clean_env, start_sqlite_backend


def backend(tmp_path, *args: str, stderr=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run([console_script("branchpy-telemetry-backend"), *args], stdout=subprocess.PIPE,
                          stderr=stderr, text=True, env=clean_env(tmp_path / "home"), cwd=tmp_path,
                          timeout=60)


# --- 2. a port in use ----------------------------------------------------------------------------


def test_serve_on_a_port_another_program_holds_says_so_and_how_to_pick_another(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        for command in (["serve"], ["up", "--no-daemon"]):
            result = backend(tmp_path, *command, "--port", str(port))
            assert result.returncode == 1, result.stderr
            said = [line for line in result.stderr.splitlines() if not line.startswith("{")]  # not the logs
            assert said == [
                f"error [cannot_listen]: port {port} is in use on 127.0.0.1 (by another program)",
                "hint: pick another port with --port (0 picks a free one and prints it)"]


def test_a_second_backend_on_the_same_port_names_the_one_already_running(tmp_path):
    running = start_sqlite_backend(tmp_path / "first")
    try:
        port = running.url.rsplit(":", 1)[1]
        result = backend(tmp_path, "serve", "--port", port)
        assert result.returncode == 1
        error, hint = [line for line in result.stderr.splitlines() if not line.startswith("{")]
        assert error == ("error [cannot_listen]: a BranchPy telemetry backend is already running at "
                         f"{running.url}")
        assert hint.startswith(f"hint: use it (dashboard {running.url}/dashboard), stop it")
        assert "--port" in hint
        assert "Traceback" not in result.stderr
    finally:
        running.stop()


# --- 7. quiet for a person, structured for a service ---------------------------------------------


def run_serve_and_load_pages(tmp_path, stderr, env_extra: dict | None = None) -> None:
    """`serve --workers 1` (so requests queue), 24 concurrent page loads, then Ctrl-C."""
    env = {**clean_env(tmp_path / "home"), **(env_extra or {})}
    command = [console_script("branchpy-telemetry-backend"), "serve", "--port", "0", "--workers", "1",
               "--db", f"sqlite:///{tmp_path / 'events.db'}"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=env, cwd=tmp_path)
    try:
        line = _read_line(proc, 30)
        assert line.startswith("serving on "), line
        url = line.split()[2]
        paths = ["/dashboard", "/static/dashboard.js", "/static/dashboard.css", "/favicon.ico",
                 "/api/telemetry/health", "/api/telemetry/stats"] * 4
        with ThreadPoolExecutor(24) as pool:
            statuses = list(pool.map(lambda p: requests.get(url + p, timeout=30).status_code, paths))
        assert statuses.count(401) == 4 and set(statuses) == {200, 401}
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        proc.stdout.close()


def read_terminal(controller: int, into: list[bytes]) -> threading.Thread:
    def drain():
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                return
            if not chunk:
                return
            into.append(chunk)

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    return thread


def test_serve_at_a_terminal_prints_no_line_per_request_and_no_queue_depth_warnings(tmp_path):
    controller, terminal = pty.openpty()
    seen: list[bytes] = []
    reader = read_terminal(controller, seen)
    try:
        run_serve_and_load_pages(tmp_path, terminal)
    finally:
        os.close(terminal)
        reader.join(5)
        os.close(controller)
    text = b"".join(seen).decode(errors="replace")
    assert "http.request" not in text and "Task queue depth" not in text and "{" not in text, text


def test_serve_as_a_service_logs_one_json_object_per_request_and_no_queue_depth_warnings(tmp_path):
    log = tmp_path / "service.log"
    with open(log, "wb") as stderr:
        run_serve_and_load_pages(tmp_path, stderr)
    lines = log.read_text().splitlines()
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    assert sum(1 for e in events if e["event"] == "http.request") == 24
    assert not any("Task queue depth" in line for line in lines)


def test_under_journald_each_json_line_starts_with_its_syslog_priority(tmp_path):
    log = tmp_path / "journal-stream"
    with open(log, "wb") as stderr:
        st = os.fstat(stderr.fileno())
        run_serve_and_load_pages(tmp_path, stderr, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    lines = log.read_text().splitlines()
    assert lines and all(re.match(r"<[2-7]>\{", line) for line in lines), lines[:3]
    assert any(line.startswith("<6>") and json.loads(line[3:])["event"] == "http.request" for line in lines)


def test_keys_create_and_migrate_print_their_results_with_no_log_line_mixed_in(tmp_path):
    db = f"sqlite:///{tmp_path / 'keys.db'}"
    created = backend(tmp_path, "keys", "create", "--scope", "read", "--db", db, stderr=subprocess.STDOUT)
    lines = created.stdout.splitlines()
    assert created.returncode == 0 and len(lines) == 5, lines
    assert lines[:2] == [f"note: created database file {tmp_path / 'keys.db'} (it did not exist)",
                         f"note: schema version 0 -> {SQLITE_SCHEMA}"]
    assert re.fullmatch(r"created key [0-9a-f]{8} \(scope read\)", lines[2])
    assert lines[3] == "it is shown only this once; store it now:" and lines[4].startswith("bpt_")
    migrated = backend(tmp_path, "migrate", "--db", db, stderr=subprocess.STDOUT)
    assert migrated.stdout == f"schema version {SQLITE_SCHEMA} (already current, nothing to do)\n"


def test_log_format_json_gives_json_even_at_a_terminal(tmp_path):
    controller, terminal = pty.openpty()
    seen: list[bytes] = []
    reader = read_terminal(controller, seen)
    try:
        result = backend(tmp_path, "--log-level", "info", "--log-format", "json", "keys", "create", "--scope",
                         "ingest", "--db", f"sqlite:///{tmp_path / 'k.db'}", stderr=terminal)
    finally:
        os.close(terminal)
        reader.join(5)
        os.close(controller)
    assert result.returncode == 0
    logged = [line for line in b"".join(seen).decode().splitlines() if line.startswith("{")]
    assert any(json.loads(line)["event"] == "keys.created" for line in logged), logged


# --- 10. migrate says what it created; unknown parameters; the icon -----------------------------


def test_migrate_of_a_mysql_database_that_does_not_exist_says_it_created_it(tmp_path, mysql_admin):
    name = f"bpt_fr_{os.urandom(6).hex()}"
    url = _database_url(name)
    try:
        result = backend(tmp_path, "migrate", "--db", url)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [f"created database `{name}` (it did not exist)",
                                              f"schema version 0 -> {MYSQL_SCHEMA}",
                                              f"schema version {MYSQL_SCHEMA}"]
    finally:
        with mysql_admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def test_an_unknown_query_parameter_is_a_400_naming_it_and_what_the_endpoint_takes(tmp_path):
    server = start_sqlite_backend(tmp_path)
    try:
        read = {"X-API-Key": server.keys["read"]}
        answer = requests.get(f"{server.api}/events", params={"limit": 2}, headers=read, timeout=10)
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert error["code"] == "bad_parameter" and error["details"] == {"parameter": "limit"}
        assert error["message"] == "invalid parameter 'limit': this endpoint does not take it"
        assert "per_page" in error["hint"]
        assert requests.get(f"{server.api}/events", params={"per_page": 2}, headers=read,
                            timeout=10).status_code == 200
        odd = requests.get(f"{server.api}/stats", params={"<b>x": 1}, headers=read, timeout=10)
        assert odd.status_code == 400 and "<b>" not in odd.text  # a name that is not a plain word: not echoed
        keyless = requests.get(f"{server.api}/stats", params={"x": 1}, timeout=10)
        assert keyless.status_code == 401  # the key is checked first
    finally:
        server.stop()


def test_the_favicon_is_served_without_a_key(tmp_path):
    server = start_sqlite_backend(tmp_path)
    try:
        icon = requests.get(f"{server.url}/favicon.ico", timeout=10)
        assert icon.status_code == 200 and icon.headers["Content-Type"].startswith("image/svg+xml")
        assert icon.content.lstrip().startswith(b"<svg")
    finally:
        server.stop()
