"""Fixtures shared by every test area. Area-specific fixtures live in the
area's own conftest (tests/client, tests/daemon, tests/backend, tests/e2e)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from branchpy_telemetry.client.contracts.paths import TelemetryPaths, resolve_paths

from .service_markers import mark_services, set_running

# Property tests run on loaded 2-core CI machines: slow data generation is not a failure.
settings.register_profile("branchpy", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("branchpy")

BIN_DIR = Path(sys.executable).parent


def pytest_collection_modifyitems(items):
    """Marks each test with the outside services it needs (`mysql`, `browser`, `galera`) from the
    fixtures it uses and the folder it lives in: see tests/service_markers.py."""
    mark_services(items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item):
    """Remembers the running test so a service helper can check the test carries its marker."""
    set_running(item)
    try:
        return (yield)
    finally:
        set_running(None)


def console_script(name: str) -> str:
    """Absolute path of one of our console scripts in the running venv."""
    path = BIN_DIR / name
    assert path.exists(), f"{name} is not installed next to {sys.executable}: pip install -e ."
    return str(path)


@pytest.fixture
def mount_tmpfs(tmp_path):
    """Mounts a tmpfs with the given options (a real small disk: ENOSPC when full,
    of bytes or of inodes); unmounted after the test. Needs root and a mount-capable host."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        point = tmp_path / f"tmpfs{len(mounted)}"
        point.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"{options},mode=0700", "tmpfs", str(point)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], check=True)


@pytest.fixture
def tiny_tmpfs(mount_tmpfs) -> Path:
    """A 16 KiB tmpfs: a real full disk (ENOSPC)."""
    return mount_tmpfs("size=16k")


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


# --- a real daemon as a subprocess (tests/daemon, tests/e2e) -------------------------------------


class DaemonProcess:
    """A `branchpy-telemetryd` started by a test; `call()` talks to it over the real socket."""

    def __init__(self, proc, paths: TelemetryPaths):
        self.proc = proc
        self.paths = paths

    def call(self, cmd: str, args: dict | None = None, *, timeout: float = 10.0):
        from branchpy_telemetry.client.thin.ipc import open_control_client

        with open_control_client(self.paths, timeout=timeout, retries=1) as client:
            return client.call(cmd, args)

    def request(self, cmd: str, args: dict | None = None, *, timeout: float = 10.0):
        from branchpy_telemetry.client.thin.ipc import open_control_client

        with open_control_client(self.paths, timeout=timeout, retries=1) as client:
            return client.request(cmd, args)

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; returns the exit code (kills and fails the test on a hang)."""
        import signal
        import subprocess

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"daemon pid {self.proc.pid} ignored SIGTERM for {timeout}s")

    def log_text(self) -> str:
        try:
            return self.paths.daemon_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""


@pytest.fixture
def start_daemon(subprocess_env, paths):
    """Factory: start_daemon("--idle-timeout", "5") -> a listening DaemonProcess (stopped at teardown)."""
    import subprocess

    from branchpy_telemetry.client.thin.daemon_launcher import wait_until_listening

    started: list[DaemonProcess] = []

    def start(*args: str, wait: bool = True) -> DaemonProcess:
        paths.log_dir.mkdir(parents=True, exist_ok=True)
        with open(paths.daemon_log, "ab") as log:
            proc = subprocess.Popen([console_script("branchpy-telemetryd"), *args], env=subprocess_env,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        daemon = DaemonProcess(proc, paths)
        started.append(daemon)
        if wait:
            wait_until_listening(paths, proc, timeout=20.0)
        return daemon

    yield start
    for daemon in started:
        if daemon.proc.poll() is None:
            daemon.terminate()


@pytest.fixture
def running_daemon(start_daemon) -> DaemonProcess:
    """A daemon that never idles out, on this test's private BRANCHPY_TELEMETRY_HOME."""
    return start_daemon("--idle-timeout", "0")


# --- a real 3-node MariaDB Galera cluster (tests/galera, tests/bench/test_bench_galera.py) ----------


@pytest.fixture(scope="session")
def galera_cluster():
    """Three Galera nodes on loopback, started once per run (about 15 s) and stopped at its end.
    Missing prerequisites FAIL the tests that need it (they never skip): install them with
    `apt-get install galera-4 rsync`, or deselect these tests with `-m 'not galera'`."""
    from .galera.cluster import GaleraCluster, prerequisites_missing

    missing = prerequisites_missing()
    if missing:
        pytest.fail(f"the Galera tests need {', '.join(missing)}: apt-get install galera-4 rsync "
                    "mariadb-server (or deselect them with -m 'not galera')", pytrace=False)
    cluster = GaleraCluster.start(3)
    try:
        yield cluster
    finally:
        cluster.stop()
