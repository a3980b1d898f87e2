"""Another local user cannot squat the socket folder, capture a secret, or make the daemon chmod.

The attack, as filed: without XDG_RUNTIME_DIR the socket folder was
`/tmp/branchpy-UID-HASH`, a name anyone can compute. Another user who made it
first kept the daemon from starting; with a fake ROUTER bound in it, the
victim's `config set telemetry.api_key …` went to the attacker, because
clients never checked who owned the folder; and a symlink there made the
daemon chmod another folder to 0700.

Each test here runs the attacker for real as `nobody` (setpriv/runuser) and
the victim as this test's user (root in CI, the strongest victim: the kernel
lets root connect anywhere, so only our own checks stand in the way).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from .local_attacker import FakeRouter, as_other_user, make_shared_dir, nobody_uid, run_as_other_user

BRANCHPY = str(Path(sys.executable).parent / "branchpy")
DAEMON = str(Path(sys.executable).parent / "branchpy-telemetryd")
SECRET = "bpt_live_squat_target_0123456789"


@pytest.fixture
def shared(tmp_path):
    """A /tmp-like folder (1777) the attacker can write in; removed afterwards."""
    as_other_user()  # skip early where we cannot act as another user
    path = make_shared_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def routers():
    started: list[FakeRouter] = []
    yield started
    for router in started:
        router.stop()


def victim_env(home: Path, **extra: str) -> dict[str, str]:
    """The victim's environment: its own HOME, no runtime dir (cron, ssh, containers)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BRANCHPY_TELEMETRY", "XDG_")) and k != "DO_NOT_TRACK"}
    env.update(HOME=str(home), PYTHONUNBUFFERED="1", **extra)
    return env


def victim(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BRANCHPY, "telemetry", *args], env=env, capture_output=True, text=True, timeout=60)


def stop_victims_daemon(env: dict) -> None:
    victim(env, "daemon", "stop")


def squat(shared: Path, folder: Path, routers: list, *, mode: int = 0o777) -> FakeRouter:
    """As `nobody`: make `folder` and bind a fake ROUTER at folder/control.sock."""
    made = run_as_other_user("mkdir", "-p", "-m", f"{mode:o}", str(folder))
    assert made.returncode == 0, made.stderr
    router = FakeRouter(str(folder / "control.sock"), shared / f"record-{len(routers)}")
    routers.append(router)
    return router


def test_the_old_predictable_tmp_folder_catches_nothing(tmp_path, shared, routers):
    home = tmp_path / "home"
    home.mkdir()
    digest = hashlib.sha256(f"no-runtime-dir:{home}".encode()).hexdigest()[:16]
    squatted = Path("/tmp") / f"branchpy-{os.getuid()}-{digest}"  # the name the old fallback used
    router = squat(shared, squatted, routers)
    env = victim_env(home)
    try:
        result = victim(env, "config", "set", "telemetry.api_key", SECRET)
        assert result.returncode == 0, result.stderr
        status = json.loads(victim(env, "--json", "status").stdout)
        assert not status["socket"].startswith(f"ipc://{squatted}")
    finally:
        stop_victims_daemon(env)
        run_as_other_user("rm", "-rf", str(squatted))
    assert router.received() == b""  # not even a connection
    assert SECRET in (home / ".config" / "branchpy" / "telemetry.toml").read_text()


def test_the_fallback_folder_is_one_other_users_cannot_create(shared, monkeypatch):
    """Without XDG_RUNTIME_DIR the socket folder is in the victim's own state
    directory; another user can neither create it nor anything on the way."""
    from branchpy_telemetry.client.contracts.paths import resolve_paths

    home = shared / "victim-home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)  # an ordinary home: readable, writable by its owner only
    env = victim_env(home)
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_RUNTIME_DIR", "XDG_STATE_HOME"):
        monkeypatch.delenv(var, raising=False)
    run_dir = resolve_paths(env).run_dir
    assert run_dir == home / ".local" / "state" / "branchpy" / "run"
    attempt = run_as_other_user("mkdir", "-p", str(run_dir))
    assert attempt.returncode != 0 and "Permission denied" in attempt.stderr
    try:
        assert victim(env, "config", "set", "telemetry.api_key", SECRET).returncode == 0
        st = os.lstat(run_dir)
        assert st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) == 0o700
    finally:
        stop_victims_daemon(env)


def misconfigured_home(shared: Path) -> Path:
    """A telemetry home every user may create in (1777): the only way left for a
    squatter to reach the socket folder, used to test that clients and daemon check."""
    home = shared / "bphome"
    home.mkdir()
    home.chmod(0o1777)
    return home


@pytest.mark.parametrize("mode", [0o777, 0o700])
def test_a_squatted_socket_folder_is_refused_and_nothing_is_sent(tmp_path, shared, routers, mode):
    home = misconfigured_home(shared)
    router = squat(shared, home / "run", routers, mode=mode)
    env = victim_env(tmp_path, BRANCHPY_TELEMETRY_HOME=str(home))
    result = victim(env, "--json", "config", "set", "telemetry.api_key", SECRET)
    assert result.returncode == 3
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "insecure_socket_dir"
    assert f"belongs to another user (uid {nobody_uid()})" in error["message"]
    assert "intercept" in error["hint"]
    plain = victim(env, "config", "set", "telemetry.api_key", SECRET)
    assert plain.returncode == 3 and "hint: another local user" in plain.stderr and SECRET not in plain.stderr
    assert router.received() == b""


def test_the_daemon_neither_starts_in_nor_chmods_a_folder_it_does_not_own(tmp_path, shared, routers):
    home = misconfigured_home(shared)
    router = squat(shared, home / "run", routers, mode=0o777)
    env = victim_env(tmp_path, BRANCHPY_TELEMETRY_HOME=str(home))
    result = subprocess.run([DAEMON], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "unsafe socket folder" in result.stderr and "[insecure_socket_dir]" in result.stderr
    st = os.lstat(home / "run")
    assert st.st_uid == nobody_uid() and stat.S_IMODE(st.st_mode) == 0o777
    assert sorted(p.name for p in (home / "run").iterdir()) == ["control.sock"]  # only the squatter's
    assert router.received() == b""


def test_a_symlinked_socket_folder_is_never_followed_or_chmodded(tmp_path, shared, routers):
    home = misconfigured_home(shared)
    victims_folder = tmp_path / "documents"
    victims_folder.mkdir()
    victims_folder.chmod(0o755)
    planted = run_as_other_user("ln", "-s", str(victims_folder), str(home / "run"))
    assert planted.returncode == 0, planted.stderr
    env = victim_env(tmp_path, BRANCHPY_TELEMETRY_HOME=str(home))
    daemon = subprocess.run([DAEMON], env=env, capture_output=True, text=True, timeout=60)
    assert daemon.returncode == 1 and "is a symbolic link" in daemon.stderr
    client = victim(env, "status")
    assert client.returncode == 3 and "is a symbolic link" in client.stderr
    assert stat.S_IMODE(victims_folder.stat().st_mode) == 0o755
    assert list(victims_folder.iterdir()) == []


def test_a_runtime_dir_open_to_others_is_ignored_and_its_squatter_gets_nothing(tmp_path, shared, routers):
    """XDG_RUNTIME_DIR=/tmp-like (containers): the socket folder would be a name anyone can take."""
    router = squat(shared, shared / "branchpy", routers)
    env = victim_env(tmp_path / "home", XDG_RUNTIME_DIR=str(shared))
    (tmp_path / "home").mkdir()
    try:
        result = victim(env, "config", "set", "telemetry.api_key", SECRET)
        assert result.returncode == 0, result.stderr
    finally:
        stop_victims_daemon(env)
    assert router.received() == b""


def test_a_planted_tcp_address_file_is_refused_and_nothing_connects(tmp_path, shared, routers):
    home = misconfigured_home(shared)
    assert run_as_other_user("mkdir", "-m", "755", str(home / "run")).returncode == 0
    router = FakeRouter(f"tcp:{shared / 'port'}", shared / "record-tcp")
    routers.append(router)
    port = (shared / "port").read_text()
    address = {"control": f"tcp://127.0.0.1:{port}", "progress": f"tcp://127.0.0.1:{port}", "token": "t"}
    planted = run_as_other_user("sh", "-c", f"echo '{json.dumps(address)}' > {home / 'run' / 'control.json'}")
    assert planted.returncode == 0, planted.stderr
    env = victim_env(tmp_path, BRANCHPY_TELEMETRY_HOME=str(home), BRANCHPY_TELEMETRY_TRANSPORT="tcp")
    result = victim(env, "config", "set", "telemetry.api_key", SECRET)
    assert result.returncode == 3 and "belongs to another user" in result.stderr
    assert router.received() == b""
