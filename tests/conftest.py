"""Fixtures shared by every test area. Area-specific fixtures live in the
area's own conftest (tests/client, tests/daemon, tests/backend, tests/e2e)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from branchpy_telemetry.client.paths import TelemetryPaths, resolve_paths

BIN_DIR = Path(sys.executable).parent


def console_script(name: str) -> str:
    """Absolute path of one of our console scripts in the running venv."""
    path = BIN_DIR / name
    assert path.exists(), f"{name} is not installed next to {sys.executable}: pip install -e ."
    return str(path)


@pytest.fixture
def telemetry_home(tmp_path, monkeypatch) -> Path:
    """A private BRANCHPY_TELEMETRY_HOME for this test; consent env cleared."""
    home = tmp_path / "bphome"
    home.mkdir()
    monkeypatch.setenv("BRANCHPY_TELEMETRY_HOME", str(home))
    for var in ("DO_NOT_TRACK", "BRANCHPY_TELEMETRY"):
        monkeypatch.delenv(var, raising=False)
    for var in list(os.environ):
        if var.startswith("BRANCHPY_TELEMETRY_") and var != "BRANCHPY_TELEMETRY_HOME":
            monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def paths(telemetry_home) -> TelemetryPaths:
    return resolve_paths()


@pytest.fixture
def subprocess_env(telemetry_home) -> dict[str, str]:
    """Environment for driving our console scripts as subprocesses."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANCHPY_TELEMETRY")}
    env.pop("DO_NOT_TRACK", None)
    env["BRANCHPY_TELEMETRY_HOME"] = str(telemetry_home)
    env["PYTHONUNBUFFERED"] = "1"
    return env
