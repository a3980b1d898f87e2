"""The systemd units: what `daemon install --print` and `branchpy-telemetry-backend install --print`
write verifies with `systemd-analyze verify` without a warning, the daemon's unit rates at most 4.0
with `systemd-analyze security --offline=true`, and the files shipped in systemd/ are exactly what
the generators give for a `pipx` / `/usr/local` install.

systemd-analyze works on files here (no systemd needs to run). It is a prerequisite: missing, these
tests FAIL (.ci/run installs the `systemd` package). verify needs the ExecStart binaries to exist,
so the shipped files are checked as temp copies whose ExecStart points at this venv's scripts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import console_script

ROOT = Path(__file__).resolve().parents[2]
UNIT_DIR = ROOT / "systemd"
VENV_BIN = Path(sys.executable).parent
DAEMON_UNIT = "branchpy-telemetryd.service"
SYSTEM_UNITS = ["branchpy-telemetry-backend.service", "branchpy-telemetry-retention.service",
                "branchpy-telemetry-retention.timer"]
MAX_DAEMON_EXPOSURE = 4.0
SERVICE_USER = "daemon"  # an existing system user (Debian base): this venv is not readable by every user


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if not found:
        pytest.fail("systemd-analyze is missing: apt-get install systemd (it only reads files here)",
                    pytrace=False)
    return found


def clean_env(home: Path) -> dict[str, str]:
    """A user with a default layout: HOME only (no XDG_* overrides, no BRANCHPY_TELEMETRY_HOME)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XDG_", "BRANCHPY_TELEMETRY")) and k not in ("DO_NOT_TRACK",)}
    env["HOME"] = str(home)
    return env


def localized(text: str) -> str:
    text = text.replace("%h/.local/bin/branchpy-telemetryd", str(VENV_BIN / "branchpy-telemetryd"))
    backend = str(VENV_BIN / "branchpy-telemetry-backend")
    return text.replace("/usr/local/bin/branchpy-telemetry-backend", backend)


def write_units(folder: Path, units: dict[str, str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in units.items():
        (folder / name).write_text(text)
        out.append(folder / name)
    return out


def analyze(systemd_analyze: str, *args: str, user: bool, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if user:  # the user manager needs a runtime dir even offline
        runtime = tmp_path / "xdg-runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(runtime)
    return subprocess.run([systemd_analyze, *args[:1], *(["--user"] if user else []), *args[1:]], env=env,
                          capture_output=True, text=True, timeout=120)


def verify(systemd_analyze: str, units: list[Path], *, user: bool, tmp_path: Path) -> list[str]:
    """Lines of `systemd-analyze verify` output about these units (warnings); fails on an error."""
    proc = analyze(systemd_analyze, "verify", *map(str, units), user=user, tmp_path=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    names = [u.name for u in units] + [str(u.parent) for u in units]
    return [line for line in output.splitlines() if any(n in line for n in names)]


def exposure(systemd_analyze: str, unit: Path, *, tmp_path: Path) -> float:
    proc = analyze(systemd_analyze, "security", "--offline=true", str(unit), user=True, tmp_path=tmp_path)
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    return float(match.group(1))


def printed_daemon_unit(tmp_path: Path) -> str:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    result = subprocess.run([console_script("branchpy"), "telemetry", "daemon", "install", "--print"],
                            env=clean_env(home), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def printed_backend_units(tmp_path: Path, *args: str) -> dict[str, str]:
    """`install --print` output split at its `# --- PATH` lines: file name -> text."""
    result = subprocess.run([console_script("branchpy-telemetry-backend"), "install", "--print",
                             "--user", SERVICE_USER, *args], env=clean_env(tmp_path), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    parts = re.split(r"^# --- (\S+).*\n", result.stdout, flags=re.M)
    return {Path(parts[i]).name: parts[i + 1] for i in range(1, len(parts), 2)}


# --- what the install commands print -----------------------------------------------------------


def test_daemon_install_print_verifies_without_warnings_and_rates_ok(systemd_analyze, tmp_path):
    text = printed_daemon_unit(tmp_path)
    assert f"ExecStart={VENV_BIN / 'branchpy-telemetryd'} --idle-timeout 0" in text
    units = write_units(tmp_path / "units", {DAEMON_UNIT: text})
    assert verify(systemd_analyze, units, user=True, tmp_path=tmp_path) == []
    assert exposure(systemd_analyze, units[0], tmp_path=tmp_path) <= MAX_DAEMON_EXPOSURE


def test_daemon_install_print_follows_a_relocated_telemetry_home(systemd_analyze, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    relocated = tmp_path / "telemetry home"  # a blank: quoted in the unit
    env = {**clean_env(home), "BRANCHPY_TELEMETRY_HOME": str(relocated)}
    result = subprocess.run([console_script("branchpy"), "telemetry", "daemon", "install", "--print"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f'Environment="BRANCHPY_TELEMETRY_HOME={relocated}"' in result.stdout
    assert f'ReadWritePaths="{relocated}"' in result.stdout
    units = write_units(tmp_path / "units", {DAEMON_UNIT: result.stdout})
    assert verify(systemd_analyze, units, user=True, tmp_path=tmp_path) == []


def test_backend_install_print_verifies_without_warnings(systemd_analyze, tmp_path):
    units = printed_backend_units(tmp_path, "--db", "mysql://telemetry:s3cret@db.example:3306/telemetry")
    assert set(units) == {*SYSTEM_UNITS, "backend.env"}
    assert "s3cret" not in "".join(units.values())  # --print never shows a password
    assert units["backend.env"].endswith("BRANCHPY_TELEMETRY_BACKEND_DB_URLS="
                                         "mysql://telemetry:***@db.example:3306/telemetry\n")
    files = write_units(tmp_path / "units", {name: units[name] for name in SYSTEM_UNITS})
    assert verify(systemd_analyze, files, user=False, tmp_path=tmp_path) == []
    backend = units["branchpy-telemetry-backend.service"]
    script = VENV_BIN / "branchpy-telemetry-backend"
    assert f"ExecStart={script} serve --host 127.0.0.1 --port 8787" in backend
    assert f"\nUser={SERVICE_USER}\n" in backend and "\nDynamicUser=" not in backend
    assert "keys create --scope ingest" in backend and "keys create --scope read" in backend


def test_the_warning_check_catches_a_broken_unit(systemd_analyze, tmp_path):
    broken = printed_daemon_unit(tmp_path).replace("[Service]", "[Service]\nWatchdogSecs=5s")
    units = write_units(tmp_path / "units", {DAEMON_UNIT: broken})
    warnings = verify(systemd_analyze, units, user=True, tmp_path=tmp_path)
    assert any("WatchdogSecs" in line for line in warnings)


def test_the_exposure_check_sees_an_unhardened_unit(systemd_analyze, tmp_path):
    text = printed_daemon_unit(tmp_path)
    bare = "\n".join(line for line in text.splitlines()
                     if not line.startswith(("Protect", "Private", "Restrict", "SystemCall", "Capability")))
    units = write_units(tmp_path / "units", {DAEMON_UNIT: bare + "\n"})
    assert exposure(systemd_analyze, units[0], tmp_path=tmp_path) > MAX_DAEMON_EXPOSURE


# --- the files shipped in systemd/ ---------------------------------------------------------------


def test_the_shipped_units_are_what_the_generators_give_for_a_default_install(tmp_path):
    from branchpy_telemetry.backend.service_units import SHIPPED_EXEC, BackendServiceOptions, render_units

    script = ("import os; from pathlib import Path; "
              "from branchpy_telemetry.client.thin.daemon_unit import "
              "PIPX_EXEC, render_daemon_unit, unit_places; "
              "from branchpy_telemetry.client.contracts.paths import resolve_paths; "
              "places = unit_places(resolve_paths(), os.environ, home=Path.home()); "
              "print(render_daemon_unit(PIPX_EXEC, places, local_docs=False), end='')")
    daemon = subprocess.run([sys.executable, "-c", script], env=clean_env(tmp_path), capture_output=True,
                            text=True, timeout=60)
    assert daemon.returncode == 0, daemon.stderr
    assert (UNIT_DIR / DAEMON_UNIT).read_text() == daemon.stdout, "regenerate systemd/ (see its README)"
    for name, text in render_units(BackendServiceOptions(exec_path=SHIPPED_EXEC, local_docs=False)).items():
        assert (UNIT_DIR / name).read_text() == text, f"regenerate systemd/{name} (see its README)"


def test_shipped_daemon_unit_verifies_and_rates_at_most_4(systemd_analyze, tmp_path):
    units = write_units(tmp_path / "units", {DAEMON_UNIT: localized((UNIT_DIR / DAEMON_UNIT).read_text())})
    assert verify(systemd_analyze, units, user=True, tmp_path=tmp_path) == []
    assert exposure(systemd_analyze, units[0], tmp_path=tmp_path) <= MAX_DAEMON_EXPOSURE


def test_shipped_backend_units_verify_without_warnings(systemd_analyze, tmp_path):
    files = write_units(tmp_path / "units", {n: localized((UNIT_DIR / n).read_text()) for n in SYSTEM_UNITS})
    assert verify(systemd_analyze, files, user=False, tmp_path=tmp_path) == []


def _settings(name: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (UNIT_DIR / name).read_text().splitlines():
        match = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if match:
            values.setdefault(match.group(1), []).append(match.group(2))
    return values


def test_daemon_unit_is_notify_with_watchdog_restart_and_user_hardening():
    s = _settings(DAEMON_UNIT)
    assert s["Type"] == ["notify"] and s["Restart"] == ["on-failure"] and s["WatchdogSec"]
    assert s["ExecStart"][0] == "%h/.local/bin/branchpy-telemetryd --idle-timeout 0"
    for key in ("NoNewPrivileges", "PrivateUsers", "LockPersonality", "MemoryDenyWriteExecute", "PrivateTmp"):
        assert s[key] == ["yes"], key
    assert s["ProtectSystem"] == ["strict"] and s["ProtectHome"] == ["read-only"]
    assert s["ReadWritePaths"][0] == "%h/.local/share/branchpy %h/.config/branchpy %t/branchpy"
    assert s["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert s["WantedBy"] == ["default.target"]
    # what a user service cannot use (systemd.exec(5)) stays out: it would fail or do nothing
    for key in ("ProtectProc", "ProcSubset", "ProtectControlGroups", "RemoveIPC", "DynamicUser"):
        assert key not in s, key


def test_backend_unit_runs_serve_as_a_dynamic_user_with_state_and_a_private_env_file():
    s = _settings("branchpy-telemetry-backend.service")
    assert s["DynamicUser"] == ["yes"] and s["StateDirectory"] == ["branchpy-telemetry"]
    assert " serve" in s["ExecStart"][0] and s["Restart"] == ["on-failure"]
    assert s["EnvironmentFile"] == ["-/etc/branchpy-telemetry/backend.env"]


def test_retention_timer_runs_purge_90d_daily_and_catches_up():
    service = _settings("branchpy-telemetry-retention.service")
    timer = _settings("branchpy-telemetry-retention.timer")
    assert service["ExecStart"][0].endswith("branchpy-telemetry-backend purge --older-than 90d")
    assert service["Type"] == ["oneshot"]
    backend = _settings("branchpy-telemetry-backend.service")
    for key in ("User", "DynamicUser", "StateDirectory", "WorkingDirectory", "EnvironmentFile"):
        assert service[key] == backend[key], key  # same user, same database
    assert timer["OnCalendar"] == ["daily"] and timer["Persistent"] == ["true"]


def test_every_documentation_link_is_real():
    from branchpy_telemetry.client.infra.unit_text import github_anchor

    readme = (ROOT / "README.md").read_text()
    anchors = {github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", readme, flags=re.M)}
    for name in [DAEMON_UNIT, *SYSTEM_UNITS]:
        for link in _settings(name)["Documentation"][0].split():
            url, _, anchor = link.partition("#")
            assert url.startswith("https://") and anchor in anchors, (name, link)
    assert (ROOT / "systemd" / "README.md").is_file()  # the file: link `install --print` adds
