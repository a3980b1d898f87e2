"""`branchpy telemetry daemon install` and `branchpy-telemetry-backend install`, run as a user would.

systemd does not run on the test machine (and a test must never enable a real service), so
`systemctl` is a stand-in script first on PATH that records its arguments and answers like the
real one: success, or the real failure line of a machine without a user manager. Everything else
is real: the files written, their modes, the daemon the CLI had started being stopped first.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from branchpy_telemetry.client.thin.daemon_launcher import is_listening

from ..conftest import console_script

NO_BUS = "Failed to connect to bus: No medium found"


@pytest.fixture
def fake_systemctl(tmp_path):
    """(PATH folder, calls file, set_failure): a `systemctl` that records `argv` one call per line."""
    folder = tmp_path / "fakebin"
    folder.mkdir()
    calls = tmp_path / "systemctl-calls"
    failure = tmp_path / "systemctl-failure"
    script = folder / "systemctl"
    script.write_text(f"""#!/bin/sh
echo "$*" >> {calls}
if [ -f {failure} ]; then cat {failure} >&2; exit 1; fi
exit 0
""")
    script.chmod(0o755)

    def fail_with(message: str) -> None:
        failure.write_text(message + "\n")

    return folder, calls, fail_with


def user_env(subprocess_env, tmp_path, fakebin: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in subprocess_env.items() if not k.startswith("XDG_")}
    env.update(HOME=str(home), PATH=f"{fakebin}:{os.environ['PATH']}")
    return env


def branchpy(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([console_script("branchpy"), "telemetry", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_daemon_install_writes_the_user_unit_stops_the_cli_daemon_and_enables_it(
        subprocess_env, tmp_path, fake_systemctl, paths):
    fakebin, calls, _ = fake_systemctl
    env = user_env(subprocess_env, tmp_path, fakebin)
    assert branchpy(env, "daemon", "start").returncode == 0
    assert is_listening(paths)

    result = branchpy(env, "daemon", "install")
    assert result.returncode == 0, result.stderr
    unit = tmp_path / "home" / ".config" / "systemd" / "user" / "branchpy-telemetryd.service"
    lines = result.stdout.splitlines()
    assert lines[0] == f"wrote {unit}"
    assert lines[1].startswith("stopped the daemon the CLI had started (pid ")
    assert lines[2] == "enabled and started branchpy-telemetryd.service (it starts again at each login)"
    assert not is_listening(paths)  # systemd's daemon would have found this one holding the lock
    assert calls.read_text().splitlines() == ["--user daemon-reload",
                                              "--user enable --now branchpy-telemetryd.service"]
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    text = unit.read_text()
    assert text == branchpy(env, "daemon", "install", "--print").stdout  # --print shows what install writes
    assert f"BRANCHPY_TELEMETRY_HOME={paths.config_dir.parent}" in text  # this test's relocated home


def test_daemon_install_without_a_user_manager_fails_naming_the_command_and_keeps_the_unit(
        subprocess_env, tmp_path, fake_systemctl):
    fakebin, _, fail_with = fake_systemctl
    fail_with(NO_BUS)
    env = user_env(subprocess_env, tmp_path, fakebin)
    result = branchpy(env, "daemon", "install")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == f"error: `systemctl --user daemon-reload` failed: {NO_BUS}"
    assert "the unit is written" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "home" / ".config" / "systemd" / "user" / "branchpy-telemetryd.service").is_file()


def test_daemon_install_on_a_system_without_systemctl_says_so(subprocess_env, tmp_path):
    bare = tmp_path / "bare-bin"
    bare.mkdir()
    env = {**user_env(subprocess_env, tmp_path, bare), "PATH": str(bare)}
    result = branchpy(env, "daemon", "install")
    assert result.returncode == 1
    assert result.stderr.startswith("error: systemctl is not installed: this system does not run systemd\n")


def test_daemon_install_print_changes_nothing(subprocess_env, tmp_path, fake_systemctl):
    fakebin, calls, _ = fake_systemctl
    env = user_env(subprocess_env, tmp_path, fakebin)
    result = branchpy(env, "daemon", "install", "--print")
    assert result.returncode == 0 and result.stdout.startswith("# BranchPy telemetry daemon")
    assert not calls.exists() and not (tmp_path / "home" / ".config").exists()


def backend_install(env, tmp_path, *args: str) -> subprocess.CompletedProcess:
    places = ["--unit-dir", str(tmp_path / "system"), "--env-file", str(tmp_path / "etc" / "backend.env")]
    command = [console_script("branchpy-telemetry-backend"), "install", "--user", "daemon", *places, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_backend_install_writes_the_units_and_a_private_env_file_enables_them_and_shows_the_key_commands(
        subprocess_env, tmp_path, fake_systemctl):
    fakebin, calls, _ = fake_systemctl
    env = user_env(subprocess_env, tmp_path, fakebin)
    url = "mysql://telemetry:s3cret@db.example:3306/telemetry"
    result = backend_install(env, tmp_path, "--db", url, "--port", "8788")
    assert result.returncode == 0, result.stderr
    names = ["branchpy-telemetry-backend.service", "branchpy-telemetry-retention.service",
             "branchpy-telemetry-retention.timer"]
    for name in names:
        assert f"wrote {tmp_path / 'system' / name}" in result.stdout
        assert stat.S_IMODE((tmp_path / "system" / name).stat().st_mode) == 0o644
    env_file = tmp_path / "etc" / "backend.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert env_file.read_text().endswith(f"BRANCHPY_TELEMETRY_BACKEND_DB_URLS={url}\n")
    assert "s3cret" not in result.stdout + result.stderr + "".join((tmp_path / "system" / n).read_text()
                                                                   for n in names)
    assert calls.read_text().splitlines() == [
        "daemon-reload", "enable --now branchpy-telemetry-backend.service branchpy-telemetry-retention.timer"]
    assert "enabled and started branchpy-telemetry-backend.service (http://127.0.0.1:8788)" in result.stdout
    key_lines = [line for line in result.stdout.splitlines() if "keys create --scope" in line]
    assert len(key_lines) == 2 and all("sudo systemd-run" in line and "-p User=daemon" in line
                                       for line in key_lines)


def test_backend_install_refuses_root_and_nobody_and_unknown_users(subprocess_env, tmp_path):
    for user, words in (("root", "must not run as root"), ("nobody", "must not run as nobody"),
                        ("no-such-user-here", "no such user")):
        result = subprocess.run([console_script("branchpy-telemetry-backend"), "install", "--print", "--user",
                                 user], env=subprocess_env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and words in result.stderr and "useradd" in result.stderr


def test_backend_install_refuses_a_dynamic_user_that_could_not_read_this_install(subprocess_env, tmp_path):
    from branchpy_telemetry.backend.service_install import exec_path
    from branchpy_telemetry.backend.service_units import install_paths, unreadable_by_others

    blocked = unreadable_by_others(install_paths(exec_path()))
    result = subprocess.run([console_script("branchpy-telemetry-backend"), "install", "--print"],
                            env=subprocess_env, capture_output=True, text=True, timeout=60)
    if blocked is None:  # an install every user can read: a dynamic user it is
        assert result.returncode == 0 and "\nDynamicUser=yes\n" in result.stdout
    else:
        assert result.returncode == 1
        assert f"{blocked} is not readable by other users" in result.stderr and "--user NAME" in result.stderr


def test_unreadable_by_others_names_the_first_folder_or_file_another_user_cannot_use():
    import shutil
    import tempfile

    from branchpy_telemetry.backend.service_units import unreadable_by_others

    top = Path(tempfile.mkdtemp(prefix="bpt-readable-", dir="/tmp"))  # pytest's tmp_path is 0700
    try:
        venv = top / "home" / "you" / ".venv" / "bin"
        venv.mkdir(parents=True)
        script = venv / "branchpy-telemetry-backend"
        script.write_text("#!/bin/sh\n")
        for folder in (top, top / "home", top / "home" / "you", venv.parent, venv):
            folder.chmod(0o755)
        script.chmod(0o755)
        assert unreadable_by_others([script]) is None
        (top / "home" / "you").chmod(0o700)  # Debian 12's default for a new home
        assert unreadable_by_others([script]) == top / "home" / "you"
        (top / "home" / "you").chmod(0o755)
        script.chmod(0o700)
        assert unreadable_by_others([script]) == script
    finally:
        shutil.rmtree(top)
