"""The unit files in systemd/ pass `systemd-analyze verify` without a single warning.

verify needs the ExecStart binaries to exist, so each test checks a temp copy
whose ExecStart points at this venv's console scripts (the only change).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT_DIR = Path(__file__).resolve().parents[2] / "systemd"
VENV_BIN = Path(sys.executable).parent
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
USER_UNITS = ["branchpy-telemetryd.service"]
SYSTEM_UNITS = ["branchpy-telemetry-backend.service", "branchpy-telemetry-retention.service",
                "branchpy-telemetry-retention.timer"]

pytestmark = pytest.mark.skipif(not Path(SYSTEMD_ANALYZE).exists(), reason="systemd-analyze not installed")


def _localized_copy(tmp_path: Path, names: list[str], transform=lambda text: text) -> list[Path]:
    out = []
    for name in names:
        text = (UNIT_DIR / name).read_text()
        text = text.replace("%h/.local/bin/branchpy-telemetryd", str(VENV_BIN / "branchpy-telemetryd"))
        text = text.replace("/usr/local/bin/branchpy-telemetry-backend",
                            str(VENV_BIN / "branchpy-telemetry-backend"))
        target = tmp_path / name
        target.write_text(transform(text))
        out.append(target)
    return out


def _verify(units: list[Path], *, user: bool, tmp_path: Path) -> str:
    env = dict(os.environ)
    if user:  # the user manager needs a runtime dir even offline
        runtime = tmp_path / "xdg-runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(runtime)
    cmd = [SYSTEMD_ANALYZE, "verify", *(["--user"] if user else []), *map(str, units)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    return output


def _warnings_about(output: str, units: list[Path]) -> list[str]:
    names = [u.name for u in units] + [str(u.parent) for u in units]
    return [line for line in output.splitlines() if any(n in line for n in names)]


def test_daemon_user_unit_verifies_without_warnings(tmp_path):
    units = _localized_copy(tmp_path, USER_UNITS)
    output = _verify(units, user=True, tmp_path=tmp_path)
    assert _warnings_about(output, units) == []


def test_backend_and_retention_system_units_verify_without_warnings(tmp_path):
    units = _localized_copy(tmp_path, SYSTEM_UNITS)
    output = _verify(units, user=False, tmp_path=tmp_path)
    assert _warnings_about(output, units) == []


def test_the_warning_check_catches_a_broken_unit(tmp_path):
    units = _localized_copy(tmp_path, USER_UNITS,
                            lambda text: text.replace("[Service]", "[Service]\nWatchdogSecs=5s"))
    output = _verify(units, user=True, tmp_path=tmp_path)
    assert any("WatchdogSecs" in line for line in _warnings_about(output, units))


def _settings(name: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (UNIT_DIR / name).read_text().splitlines():
        match = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if match:
            values.setdefault(match.group(1), []).append(match.group(2))
    return values


def test_daemon_unit_is_notify_with_watchdog_restart_and_user_hardening():
    s = _settings("branchpy-telemetryd.service")
    assert s["Type"] == ["notify"] and s["Restart"] == ["on-failure"] and s["WatchdogSec"]
    assert s["ExecStart"][0].startswith("%h/.local/bin/branchpy-telemetryd")
    assert "--idle-timeout 0" in s["ExecStart"][0]
    for key in ("NoNewPrivileges", "LockPersonality", "MemoryDenyWriteExecute", "PrivateTmp"):
        assert s[key] == ["yes"], key
    assert s["ProtectSystem"] == ["strict"]
    writable = " ".join(s["ReadWritePaths"])
    for path in ("%h/.local/share/branchpy", "%h/.config/branchpy", "%t/branchpy"):
        assert path in writable
    assert s["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert s["WantedBy"] == ["default.target"]


def test_backend_unit_runs_serve_as_a_dynamic_user_with_state():
    s = _settings("branchpy-telemetry-backend.service")
    assert s["DynamicUser"] == ["yes"] and s["StateDirectory"] == ["branchpy-telemetry"]
    assert " serve" in s["ExecStart"][0] and s["Restart"] == ["on-failure"]


def test_retention_timer_runs_purge_90d_daily_and_catches_up():
    service = _settings("branchpy-telemetry-retention.service")
    timer = _settings("branchpy-telemetry-retention.timer")
    assert service["ExecStart"][0].endswith("branchpy-telemetry-backend purge --older-than 90d")
    assert service["Type"] == ["oneshot"]
    backend = _settings("branchpy-telemetry-backend.service")
    for key in ("User", "StateDirectory", "WorkingDirectory"):  # same database as the backend
        assert service[key] == backend[key], key
    assert timer["OnCalendar"] == ["daily"] and timer["Persistent"] == ["true"]
