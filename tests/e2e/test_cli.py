"""`branchpy telemetry …` driven as a subprocess against a real daemon on this test's home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from branchpy_telemetry.client.contracts.paths import resolve_paths
from branchpy_telemetry.client.thin.daemon_launcher import is_listening, pid_alive, wait_until_stopped

BRANCHPY = str(Path(sys.executable).parent / "branchpy")


def stop_daemon_if_running(paths) -> None:
    """Teardown for daemons the CLI spawned (detached, so no Popen to wait on)."""
    if not is_listening(paths):
        return
    from branchpy_telemetry.client.thin.ipc import ControlClient

    with ControlClient(paths.control_endpoint, timeout=5, retries=1) as client:
        pid = client.call("shutdown")["pid"]
    assert wait_until_stopped(paths, pid, 10), f"daemon {pid} did not stop"


@pytest.fixture
def cli(subprocess_env, paths, tmp_path):
    """cli("status", "--json") -> CompletedProcess; stops any daemon it spawned at teardown."""
    homes = [paths]

    def run(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 60):
        if env is not None:
            homes.append(resolve_paths(env))
        return subprocess.run([BRANCHPY, "telemetry", *args], env=env or subprocess_env, cwd=cwd or tmp_path,
                              capture_output=True, text=True, timeout=timeout)

    yield run
    for home in homes:
        stop_daemon_if_running(home)


def assert_clean_error(result, exit_code: int) -> None:
    assert result.returncode == exit_code, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ")
    assert "\nhint: " in result.stderr
    assert "Traceback" not in result.stderr


def test_status_no_start_without_daemon_exits_3_with_hint_naming_socket_and_log(cli, paths):
    result = cli("status", "--no-start")
    assert_clean_error(result, 3)
    assert paths.control_endpoint in result.stderr
    assert str(paths.daemon_log) in result.stderr
    assert not paths.control_socket.exists()  # and it did not start one


def test_status_starts_a_daemon_when_none_runs_and_it_keeps_serving(cli, paths):
    first = cli("--json", "status")
    assert first.returncode == 0, first.stderr
    status = json.loads(first.stdout)
    assert status["mode"] == "manual" and status["idle_timeout_s"] == 600
    second = json.loads(cli("status", "--json").stdout)
    assert second["pid"] == status["pid"]  # the same daemon answered again


def test_daemon_that_cannot_start_exits_3_with_hint_naming_socket_and_log(cli, telemetry_home, paths):
    (telemetry_home / "state").write_text("a file where the state folder must be")  # holds for root too
    result = cli("status")
    assert_clean_error(result, 3)
    assert "exited during start" in result.stderr
    assert paths.control_endpoint in result.stderr
    assert str(paths.daemon_log) in result.stderr
    assert "cannot start" in result.stderr  # the daemon's own reason, read from its log


def test_daemon_that_does_not_answer_exits_3_after_lazy_pirate_retries(cli, paths):
    import zmq

    paths.run_dir.mkdir(parents=True, exist_ok=True)
    context = zmq.Context()
    mute = context.socket(zmq.ROUTER)  # accepts connections, never replies
    mute.setsockopt(zmq.LINGER, 0)
    try:
        mute.bind(paths.control_endpoint)
        result = cli("status", "--timeout", "0.3")
    finally:
        mute.close(linger=0)
        context.term()
    assert_clean_error(result, 3)
    assert "no reply" in result.stderr and "3 tries" in result.stderr
    assert str(paths.daemon_log) in result.stderr


def test_stale_socket_file_means_no_daemon(cli, paths):
    import socket

    paths.run_dir.mkdir(parents=True, exist_ok=True)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(paths.control_socket))  # bound, never listening: like a crashed daemon's file
    stale.close()
    assert_clean_error(cli("status", "--no-start"), 3)
    started = cli("status")
    assert started.returncode == 0, started.stderr


def test_deep_home_falls_back_to_a_short_private_socket_dir(cli, subprocess_env, tmp_path):
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 6)
    deep.mkdir(parents=True)
    env = {**subprocess_env, "BRANCHPY_TELEMETRY_HOME": str(deep)}
    result = cli("--json", "status", env=env)
    assert result.returncode == 0, result.stderr
    socket_path = json.loads(result.stdout)["socket"]
    assert not socket_path.startswith("ipc://" + str(deep))
    assert len(socket_path) - len("ipc://") <= 107


def test_config_set_get_show_round_trip(cli, running_daemon, paths):
    assert cli("config", "set", "telemetry.auto.interval", "2h").returncode == 0
    get = cli("config", "get", "telemetry.auto.interval")
    assert get.returncode == 0 and get.stdout.strip() == "2h"
    assert cli("config", "set", "telemetry.max_upload_size_mb", "2.5").returncode == 0
    show = cli("config", "show", "--json")
    values = json.loads(show.stdout)["values"]
    assert values["telemetry.auto.interval"] == "2h"
    assert values["telemetry.max_upload_size_mb"] == 2.5
    assert "2h" in paths.config_file.read_text()
    human = cli("config", "show").stdout
    assert "telemetry.auto.interval" in human and "2h" in human


def test_config_unknown_key_exits_2_naming_the_key(cli, running_daemon):
    for args in (("get", "telemetry.colour"), ("set", "telemetry.colour", "red")):
        result = cli("config", *args)
        assert_clean_error(result, 2)
        assert "telemetry.colour" in result.stderr


def test_config_invalid_value_exits_2_and_keeps_the_file(cli, running_daemon, paths):
    result = cli("config", "set", "telemetry.mode", "sometimes")
    assert_clean_error(result, 2)
    assert not paths.config_file.exists()


def test_json_error_output_parses_and_still_exits_3(cli):
    result = cli("status", "--json", "--no-start")
    assert result.returncode == 3
    body = json.loads(result.stdout)
    assert body["ok"] is False and body["error"]["code"] == "daemon_unavailable"
    assert body["error"]["hint"]


@pytest.mark.parametrize("args", [
    (),
    ("export",),
    ("export", "--output", "x.json", "--from", "last week"),
    ("emit", "--category", "gossip", "--name", "x"),
    ("emit", "--category", "command", "--name", "x", "--attr", "novalue"),
    ("status", "--timeout", "-1"),
    ("frobnicate",),
])
def test_usage_errors_exit_2_with_error_and_hint(cli, args):
    assert_clean_error(cli(*args), 2)


def test_emit_writes_the_spool_without_any_daemon(cli, paths):
    result = cli("emit", "--no-start", "--json", "--category", "command", "--name", "analyze",
                 "--duration-ms", "12.5", "--status", "error", "--error-code", "BP-E1",
                 "--error-message", "failed on /home/alice/game/script.rpy", "--attr", "files=120",
                 "--attr", "flag_json=true", "--attr", "label=hello")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    line = json.loads(paths.active_spool.read_text())
    assert body["recorded"] is True and line["event_id"] == body["event_id"]
    assert line["attrs"] == {"files": 120, "flag_json": True, "label": "hello"}
    assert line["error"]["code"] == "BP-E1" and line["duration_ms"] == 12.5
    assert not paths.control_socket.exists()  # no daemon was needed or started


@pytest.mark.parametrize(("args", "status"), [
    (["--category", "command"], "ok"),
    (["--category", "command", "--error-code", "BP-E9"], "error"),
    (["--category", "command", "--error-message", "boom"], "error"),
    (["--category", "command", "--status", "cancelled"], "cancelled"),
    (["--category", "feature"], None),
])
def test_emit_status_defaults_follow_what_the_script_described(cli, paths, args, status):
    assert cli("emit", *args, "--name", "analyze").returncode == 0
    assert json.loads(paths.active_spool.read_text()).get("status") == status


def test_emit_under_do_not_track_records_nothing_and_says_so(cli, subprocess_env, paths):
    result = cli("emit", "--category", "command", "--name", "x", env={**subprocess_env, "DO_NOT_TRACK": "1"})
    assert result.returncode == 0
    assert "not recorded" in result.stdout
    assert not paths.active_spool.exists()


def test_export_relative_output_lands_in_the_callers_folder_and_preview_reviews_it(cli, tmp_path):
    """`engine` is a declared text attr (a path in it is dropped by the rules); `path` is not
    declared; `render` is not a declared command (dropped whole). The user's own preview names
    the left-out event; the package and its report never do."""
    for name in ("analyze", "analyze", "render"):
        assert cli("emit", "--category", "command", "--name", name, "--duration-ms", "3",
                   "--attr", "engine=/home/alice/secret.rpy", "--attr", "path=/home/alice/secret.rpy",
                   "--attr", "files=3").returncode == 0
    workdir = tmp_path / "work"
    workdir.mkdir()
    exported = cli("--json", "export", "--output", "rc-metrics.json", "--from", "1h", cwd=workdir)
    assert exported.returncode == 0, exported.stderr
    result = json.loads(exported.stdout)
    assert result["events"] == 2
    assert result["redactions"] == {"raw_path": 2, "undeclared_attr": 2, "undeclared_event": 1}
    assert result["files"] == [str(workdir / "rc-metrics.json")]
    for written in (workdir / "rc-metrics.json", workdir / "rc-metrics.redactions.json"):
        assert b"alice" not in written.read_bytes() and b"render" not in written.read_bytes()
    human = cli("preview", "rc-metrics.json", cwd=workdir)
    assert human.returncode == 0, human.stderr
    assert "VALID: this package passes" in human.stdout and "/home/alice" not in human.stdout
    assert "raw_path" in human.stdout  # the redaction report: the rule, never the value
    assert "command/render ×1" in human.stdout  # this machine's user sees their own left-out name
    preview = json.loads(cli("preview", "--json", str(workdir / "rc-metrics.json")).stdout)
    assert preview["valid"] is True and [e["attrs"] for e in preview["events"]] == [{"files": 3}] * 2


def test_export_human_output_names_the_file_and_the_review_command(cli, tmp_path):
    cli("emit", "--category", "feature", "--name", "graph.open")
    result = cli("export", "-o", str(tmp_path / "out.json"))
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "out.json") in result.stdout
    assert "branchpy telemetry preview" in result.stdout


def test_preview_of_a_missing_file_exits_1_with_hint(cli, tmp_path):
    result = cli("preview", str(tmp_path / "nope.json"))
    assert_clean_error(result, 1)


def test_catalog_lists_what_may_be_collected_and_check_validates_a_file(cli, tmp_path):
    listed = cli("catalog")
    assert listed.returncode == 0, listed.stderr
    assert "command/analyze" in listed.stdout and "flag_json" in listed.stdout
    assert "everything else is dropped on export" in listed.stdout
    as_json = json.loads(cli("catalog", "--json").stdout)
    assert as_json["id"] == "branchpy" and any(e["name"] == "graph.open" for e in as_json["events"])
    good = tmp_path / "mine.toml"
    good.write_text('format = 1\nid = "mine"\nrevision = "1"\n')
    checked = cli("catalog", "check", "mine.toml")  # relative to the caller's folder
    assert checked.returncode == 0 and f"valid: {good}" in checked.stdout
    good.write_text('format = 1\nid = "Mine Studio"\nrevision = "1"\n')
    refused = cli("catalog", "check", str(good))
    assert refused.returncode == 4 and "not valid" in refused.stdout and "id:" in refused.stdout


def test_schema_prints_the_json_schema(cli):
    result = cli("schema", "--json")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert "1.0.0" in json.dumps(schema)


def test_daemon_start_status_stop_cycle(cli, paths):
    assert cli("daemon", "status").returncode == 3
    started = cli("daemon", "start", "--json")
    assert started.returncode == 0, started.stderr
    pid = json.loads(started.stdout)["pid"]
    again = cli("daemon", "start")
    assert again.returncode == 0 and "already running" in again.stdout
    status = cli("daemon", "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["pid"] == pid
    stopped = cli("daemon", "stop")
    assert stopped.returncode == 0 and f"pid {pid}" in stopped.stdout
    assert not paths.control_socket.exists()
    assert not pid_alive(pid)
    assert cli("daemon", "stop").stdout.strip() == "no daemon is running"


def test_status_human_output_lists_pid_mode_socket_and_log(cli, running_daemon, paths):
    result = cli("status")
    assert result.returncode == 0, result.stderr
    assert f"pid {running_daemon.proc.pid}" in result.stdout
    assert "manual" not in result.stdout or "mode" in result.stdout
    assert paths.control_endpoint in result.stdout and str(paths.daemon_log) in result.stdout


def test_export_shows_progress_on_a_terminal_and_not_in_pipes(cli, running_daemon, subprocess_env, paths,
                                                              tmp_path):
    import pty

    from branchpy_telemetry.client.emitter.emit import Emitter

    emitter = Emitter(paths)
    for n in range(30_000):
        emitter.emit("command", "analyze", duration_ms=float(n % 100))
    emitter.close()
    master, slave = pty.openpty()
    try:
        result = subprocess.run([BRANCHPY, "telemetry", "export", "-o", str(tmp_path / "tty.json")],
                                env=subprocess_env, stdout=subprocess.PIPE, stderr=slave, timeout=120)
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
    assert result.returncode == 0
    terminal = b"".join(chunks).decode(errors="replace")
    assert "exporting: " in terminal
    piped = cli("export", "-o", str(tmp_path / "pipe.json"))
    assert piped.returncode == 0 and piped.stderr == ""
