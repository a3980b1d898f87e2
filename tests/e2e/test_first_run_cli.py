"""What a new user meets with `branchpy telemetry`, driven as a subprocess: every command says
the truth (exit code and the words on the screen), and a failed command changes nothing.

Config values are checked where they are set; `mode` is all or nothing; `upload --file` sends
only bytes this machine exported or a person reviewed with `preview` (`--reviewed`); `preview`
says in one line what a file is not; counters say what they count; a closed pipe is a quiet exit.
"""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from branchpy_telemetry.client.contracts.catalog import BUNDLED_CATALOG
from branchpy_telemetry.client.contracts.fixed_formats import STATUSES, TIMESTAMP_REGEX

from ..conftest import console_script
from .delivery_env import configure, emit_events, run_cli, start_live_backend, stored_event_ids

TIMESTAMP = TIMESTAMP_REGEX.strip("^$")


def error_lines(result) -> tuple[str, str]:
    """(the `error:` line, the `hint:` line) of a clean failure: nothing else, never a traceback."""
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), result.stderr
    return lines[0], lines[1]


# --- 1. config values are checked where they are set; a failed command changes nothing ---------


@pytest.mark.parametrize(("key", "value", "says", "takes"), [
    ("telemetry.auto.interval", "1s", "error: telemetry.auto.interval: '1s' is below the floor of 10s",
     "hint: telemetry.auto.interval takes a duration of at least 10s"),
    ("telemetry.auto.interval", "soon", "error: telemetry.auto.interval: invalid duration 'soon'",
     "hint: telemetry.auto.interval takes a duration of at least 10s"),
    ("telemetry.mode", "sometimes", "error: telemetry.mode: invalid enum value 'sometimes'",
     "hint: telemetry.mode takes manual or auto"),
    ("telemetry.consent", "maybe", "error: telemetry.consent: invalid enum value 'maybe'",
     "hint: telemetry.consent takes on or off"),
    ("telemetry.max_upload_size_mb", "-1", "error: telemetry.max_upload_size_mb: must be greater than 0",
     "hint: telemetry.max_upload_size_mb takes a number of megabytes greater than 0"),
    ("telemetry.max_upload_size_mb", "big", "error: telemetry.max_upload_size_mb: expected `float`",
     "hint: telemetry.max_upload_size_mb takes a number of megabytes greater than 0"),
    ("telemetry.rotation.max_age", "later", "error: telemetry.rotation.max_age: invalid duration 'later'",
     "hint: telemetry.rotation.max_age takes a duration"),
    ("telemetry.endpoint", "ftp://x", "error: telemetry.endpoint: expected an http(s) URL",
     "hint: telemetry.endpoint takes the backend's base URL"),
])
def test_config_set_refuses_a_bad_value_naming_the_key_once_with_the_values_it_takes(
        subprocess_env, running_daemon, paths, key, value, says, takes):
    result = run_cli(subprocess_env, "config", "set", key, value)
    assert result.returncode == 2
    error, hint = error_lines(result)
    assert error.startswith(says) and error.count(key) == 1
    assert hint.startswith(takes)
    assert not paths.config_file.exists()  # nothing written


def test_config_set_catalog_must_be_a_valid_catalog_and_is_stored_as_an_absolute_path(
        subprocess_env, running_daemon, paths, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text('format = 1\nid = "studio"\n')
    result = subprocess.run([console_script("branchpy"), "telemetry", "config", "set", "telemetry.catalog",
                             "broken.toml"], env=subprocess_env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    error, hint = error_lines(result)
    assert error.startswith(f"error: telemetry.catalog: {broken}:") and "catalog check" in hint
    assert not paths.config_file.exists()
    good = tmp_path / "good.toml"
    shutil.copy(BUNDLED_CATALOG, good)
    result = subprocess.run([console_script("branchpy"), "telemetry", "config", "set", "telemetry.catalog",
                             "good.toml"], env=subprocess_env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"telemetry.catalog = {good}  (saved to {paths.config_file})\n"


def test_mode_auto_below_the_floor_changes_nothing_and_mode_then_says_manual(subprocess_env, running_daemon,
                                                                           paths):
    before = run_cli(subprocess_env, "config", "set", "telemetry.auto.interval", "2h")
    assert before.returncode == 0
    file_before = paths.config_file.read_bytes()
    result = run_cli(subprocess_env, "mode", "auto", "--interval", "5s")
    assert result.returncode == 2
    error, hint = error_lines(result)
    assert error == "error: interval '5s' is below the floor of 10s" and "--interval 6h" in hint
    assert paths.config_file.read_bytes() == file_before
    shown = run_cli(subprocess_env, "mode")
    assert shown.returncode == 0 and shown.stdout.splitlines()[0].split() == ["mode", "manual"]


def test_mode_alone_shows_the_mode_and_the_next_run_in_the_wire_time_format(subprocess_env, running_daemon):
    switched = run_cli(subprocess_env, "mode", "auto", "--interval", "1h")
    assert switched.returncode == 0, switched.stderr
    assert re.search(rf"^next run +{TIMESTAMP}$", switched.stdout, flags=re.M), switched.stdout
    shown = run_cli(subprocess_env, "mode")
    lines = dict(line.split(None, 1) if " " in line else (line, "") for line in shown.stdout.splitlines())
    assert shown.returncode == 0 and lines["mode"].strip() == "auto" and lines["interval"].strip() == "1h"
    assert re.fullmatch(rf"run +{TIMESTAMP}", lines["next"].strip()), shown.stdout
    status = run_cli(subprocess_env, "status")
    assert re.search(rf"^auto +every 1h, next run {TIMESTAMP}$", status.stdout, flags=re.M), status.stdout
    assert run_cli(subprocess_env, "mode", "manual").returncode == 0


def test_status_of_auto_mode_with_nothing_scheduled_says_why():
    from branchpy_telemetry.client.thin.cli.status import delivery_pairs

    auto = {"scheduled": False, "interval": "6h", "not_scheduled_because": "the schedule has not started"}
    pairs = dict(delivery_pairs({"mode": "auto", "auto": auto}))
    assert pairs["auto"] == "NOT SCHEDULED: the schedule has not started"


# --- 3. upload --file: exported bytes, or reviewed bytes with --reviewed ---------------------------


@pytest.fixture
def live(tmp_path, subprocess_env, paths, start_daemon):
    backend, key = start_live_backend(tmp_path / "backend")
    configure(paths.config_file, telemetry__endpoint=backend.api, telemetry__api_key=key)
    start_daemon("--idle-timeout", "0")
    yield backend
    backend.stop()


def export_package(env, tmp_path, name="rc-metrics.json", events=12) -> Path:
    emit_events(env, tmp_path, events)
    package = tmp_path / name
    exported = run_cli(env, "export", "--output", str(package))
    assert exported.returncode == 0, exported.stderr
    return package


def edited(data: bytes) -> bytes:
    """A change a person might make that keeps a valid package (another declared command name)."""
    assert b'"analyze"' in data
    return data.replace(b'"analyze"', b'"lint"')


def test_a_package_edited_in_place_needs_preview_then_reviewed_and_each_hint_leads_there(
        live, subprocess_env, tmp_path):
    package = export_package(subprocess_env, tmp_path)
    package.write_bytes(edited(package.read_bytes()))

    refused = run_cli(subprocess_env, "upload", "--file", str(package))
    assert refused.returncode == 4
    error, hint = error_lines(refused)
    assert error.startswith(f"error: {package} changed since it was exported") and "nothing was sent" in error
    assert f"branchpy telemetry preview {package}" in hint
    assert f"branchpy telemetry upload --file {package} --reviewed" in hint

    unreviewed = run_cli(subprocess_env, "upload", "--file", str(package), "--reviewed")
    assert unreviewed.returncode == 4
    error, hint = error_lines(unreviewed)
    assert "was not previewed as it is now" in error and f"branchpy telemetry preview {package}" in hint
    assert stored_event_ids(live) == []

    preview = run_cli(subprocess_env, "preview", str(package))
    assert preview.returncode == 0
    assert preview.stdout.splitlines()[-2:] == [
        "VALID: this package passes the schema and the privacy rules the server applies.",
        f"send it: branchpy telemetry upload --file {package} --reviewed"]
    sent = run_cli(subprocess_env, "upload", "--file", str(package), "--reviewed")
    assert sent.returncode == 0, sent.stderr
    assert re.fullmatch(r"sent rc-metrics\.json: package \S+, 12 event\(s\), [0-9.]+ KiB — "
                        r"delivered \(12 new\), receipt sha256:[0-9a-f]{64}\n", sent.stdout), sent.stdout
    assert len(stored_event_ids(live)) == 12

    package.write_bytes(package.read_bytes() + b"\n")  # changed again after the review
    again = run_cli(subprocess_env, "upload", "--file", str(package), "--reviewed")
    assert again.returncode == 4 and "was not previewed as it is now" in again.stderr


def test_an_edited_copy_under_another_name_is_not_sent_without_review(live, subprocess_env, tmp_path):
    package = export_package(subprocess_env, tmp_path)
    copy = tmp_path / "tidied.json"
    copy.write_bytes(edited(package.read_bytes()))

    refused = run_cli(subprocess_env, "upload", "--file", str(copy))
    assert refused.returncode == 4
    error, hint = error_lines(refused)
    assert error == (f"error: {copy} was not exported by this machine (or was changed after export): "
                     "nothing was sent")
    assert f"branchpy telemetry preview {copy}" in hint and "--reviewed" in hint
    assert stored_event_ids(live) == []

    assert run_cli(subprocess_env, "preview", str(copy)).returncode == 0
    sent = run_cli(subprocess_env, "upload", "--file", str(copy), "--reviewed")
    assert sent.returncode == 0, sent.stderr and "delivered (12 new)" in sent.stdout


def test_an_unchanged_copy_is_the_package_this_machine_exported(live, subprocess_env, tmp_path):
    package = export_package(subprocess_env, tmp_path)
    copy = tmp_path / "same.json"
    copy.write_bytes(package.read_bytes())
    sent = run_cli(subprocess_env, "upload", "--file", str(copy))
    assert sent.returncode == 0, sent.stderr
    assert "delivered (12 new)" in sent.stdout
    preview = run_cli(subprocess_env, "preview", str(copy))
    assert preview.stdout.splitlines()[-1] == f"send it: branchpy telemetry upload --file {copy}"


# --- 4. preview of something that is not a package ----------------------------------------------


@pytest.mark.parametrize(("content", "name", "says"), [
    (b"hello\n", "notes.json", "is not a telemetry package: it is not JSON"),
    (b'{"findings": []}', "rc-metrics.redactions.json", "is a redaction report, not a package"),
    (b"[]", "list.json", "is not a telemetry package: it is a JSON array, not an object"),
])
def test_preview_of_a_file_that_is_not_a_package_says_so_in_one_line(subprocess_env, running_daemon, tmp_path,
                                                                    content, name, says):
    path = tmp_path / name
    path.write_bytes(content)
    result = run_cli(subprocess_env, "preview", str(path))
    assert result.returncode == 4 and result.stdout == ""
    error, hint = error_lines(result)
    assert error == f"error: {path} {says}"
    assert "preview" in hint


# --- 5. every number says what it counts -----------------------------------------------------------


def test_repeated_upload_auto_and_sync_say_what_the_server_stored_and_status_counts_say_what_they_count(
        live, subprocess_env, tmp_path, paths):
    run_cli(subprocess_env, "rotate")  # creates rotation.gen beside the spool files
    emit_events(subprocess_env, tmp_path, 4)
    first = run_cli(subprocess_env, "upload", "--auto", "--from", "1h")
    assert first.returncode == 0, first.stderr
    assert "4 event(s)" in first.stdout and "— delivered (4 new)," in first.stdout
    second = run_cli(subprocess_env, "upload", "--auto", "--from", "1h")
    assert second.returncode == 0, second.stderr
    assert "— delivered (0 new, 4 the server already had)," in second.stdout
    dry = run_cli(subprocess_env, "upload", "--auto", "--from", "1h", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.startswith("would send (dry run)")

    sync = run_cli(subprocess_env, "sync")
    assert sync.returncode == 0, sync.stderr
    lines = {line.split("  ", 1)[0]: line.split("  ", 1)[1].strip() for line in sync.stdout.splitlines()}
    assert lines["read"] == ("4 event(s) added to the spool since the last sync (some may have been sent by "
                             "upload already)")
    assert lines["delivered"] == "1 package(s): 0 event(s) new to the server, 4 it already had"
    assert len(stored_event_ids(live)) == 4

    status = json.loads(run_cli(subprocess_env, "--json", "status").stdout)
    counters = status["counters"]
    assert counters["read_by_sync"] == counters["emitted"] == 4  # `emitted`: the old name, kept one release
    assert (counters["exported"], counters["exported_packages"]) == (12, 3)  # two upload --auto + sync
    assert (counters["dry_run_exported"], counters["dry_run_packages"]) == (4, 1)
    assert (counters["uploaded"], counters["duplicate_events"], counters["duplicates"]) == (4, 8, 0)
    assert status["spool_files"] == 1  # the active file; rotation.gen is not a spool file
    assert (paths.spool_dir / "rotation.gen").exists()
    text = run_cli(subprocess_env, "status").stdout
    assert re.search(r"^  exported +12 event\(s\) in 3 package\(s\), counted at each export", text,
                     flags=re.M)
    assert re.search(r"^  dry runs +4 event\(s\) in 1 package\(s\) built by upload --dry-run, never sent$",
                     text, flags=re.M)
    assert re.search(r"^  uploaded +4 event\(s\) new to the server in \d+ package\(s\); "
                     r"8 event\(s\) it already had \(0 package\(s\) sent again whole\)$",
                     text, flags=re.M), text


# --- 6. a closed pipe ---------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [("history",), ("schema", "--bridge"), ("catalog",)])
def test_a_reader_that_goes_away_is_a_quiet_exit_141(subprocess_env, running_daemon, args):
    proc = subprocess.Popen([console_script("branchpy"), "telemetry", *args], env=subprocess_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the command writes a byte
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 141 and stderr == b"", stderr


def test_piping_into_head_prints_the_first_line_and_nothing_else(subprocess_env, running_daemon):
    branchpy = console_script("branchpy")
    script = f'"{branchpy}" telemetry schema --bridge | head -1; echo "status ${{PIPESTATUS[0]}}"'
    result = subprocess.run(["bash", "-c", script], env=subprocess_env, capture_output=True, text=True,
                            timeout=60)
    lines = result.stdout.splitlines()
    assert lines[0] == "{" and lines[1] in ("status 0", "status 141")
    assert result.stderr == ""


# --- 10. the smaller things -----------------------------------------------------------------------


def test_emit_status_takes_only_the_statuses_a_package_may_carry(subprocess_env):
    from branchpy_telemetry.client.thin.cli.emit import STATUS_WORDS

    assert STATUS_WORDS == STATUSES
    result = run_cli(subprocess_env, "emit", "--category", "command", "--name", "analyze", "--status", "done")
    assert result.returncode == 2
    error, _ = error_lines(result)
    assert error == ("error: argument --status: invalid status 'done': choose one of "
                     "ok, error, cancelled, timeout, skipped")
    assert run_cli(subprocess_env, "emit", "--category", "command", "--name", "analyze", "--status",
                   "timeout").returncode == 0


def test_history_has_a_header_and_times_in_the_wire_format(live, subprocess_env, tmp_path):
    package = export_package(subprocess_env, tmp_path, events=3)
    assert run_cli(subprocess_env, "upload", "--file", str(package)).returncode == 0
    lines = run_cli(subprocess_env, "history").stdout.splitlines()
    assert lines[0].split("  ")[0] == "when (UTC)" and "stored new / already there" in lines[0]
    assert re.match(rf"{TIMESTAMP}  \S+ +3 +[0-9.]+ KiB  delivered +3 / 0  ", lines[1]), lines


def test_purge_declined_at_the_prompt_deletes_nothing_and_exits_0(subprocess_env, running_daemon, paths):
    emit_events(subprocess_env, paths.data_dir.parent, 2)
    controller, terminal = pty.openpty()
    try:
        os.write(controller, b"n\n")
        result = subprocess.run([console_script("branchpy"), "telemetry", "purge"], env=subprocess_env,
                                stdin=terminal, capture_output=True, text=True, timeout=60)
    finally:
        os.close(controller)
        os.close(terminal)
    assert result.returncode == 0 and result.stdout == "nothing deleted\n"
    assert "[y/N]" in result.stderr and paths.active_spool.stat().st_size > 0


def test_the_quickstart_files_are_ignored_by_git():
    root = Path(console_script("branchpy")).parents[2]
    ignored = subprocess.run(["git", "check-ignore", "rc-metrics.json", "rc-metrics.redactions.json",
                              "rc-metrics.part001.json"], cwd=root, capture_output=True, text=True)
    assert ignored.stdout.split() == ["rc-metrics.json", "rc-metrics.redactions.json",
                                      "rc-metrics.part001.json"]
