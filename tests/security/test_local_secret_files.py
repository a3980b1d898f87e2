"""Secrets at rest: files that may hold a secret are 0600 in 0700 folders,
written atomically, and `config set` keeps the user's comments.

Secrets: the API key (config file, `config set telemetry.api_key`), the local
stack's keys (`local-backend.json`), the tcp transport's token
(`control.json`). Before: `config set` wrote `telemetry.toml` 0644 in a 0755
folder (world-readable API key) and threw away the user's comments.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from branchpy_telemetry.client.contracts.config import load_config, set_value_in_file
from branchpy_telemetry.client.contracts.errors import StorageError

BRANCHPY = str(Path(sys.executable).parent / "branchpy")
SECRET = "bpt_sec_0123456789abcdefSECRET"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def cli(env: dict, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([BRANCHPY, "telemetry", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def umask_022():
    """The usual umask (a plain write would give 0644 / 0755), for this test and the daemon it starts."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_config_set_on_a_fresh_home_writes_the_key_0600_in_a_0700_folder(umask_022, running_daemon,
                                                                        subprocess_env, paths):
    result = cli(subprocess_env, "config", "set", "telemetry.api_key", SECRET)
    assert result.returncode == 0, result.stderr
    assert mode(paths.config_file) == 0o600
    assert mode(paths.config_dir) == 0o700
    assert load_config(paths.config_file, env={}).telemetry.api_key == SECRET


USER_FILE = textwrap.dedent("""\
    # BranchPy telemetry — my settings (keep this comment)
    [telemetry]
    mode = "manual"          # I review everything by hand
    endpoint = "http://127.0.0.1:8787/api/telemetry"

    # rotate small files
    [telemetry.rotation]
    max_file_mb   = 2        # aligned on purpose
    """)


def test_config_set_tightens_an_existing_0644_file_and_keeps_comments_and_layout(running_daemon,
                                                                                subprocess_env, paths):
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_dir.chmod(0o755)
    paths.config_file.write_text(USER_FILE)
    paths.config_file.chmod(0o644)
    assert cli(subprocess_env, "config", "set", "telemetry.api_key", SECRET).returncode == 0
    assert cli(subprocess_env, "config", "set", "telemetry.rotation.max_age", "2h").returncode == 0
    assert mode(paths.config_file) == 0o600
    assert mode(paths.config_dir) == 0o700
    assert_kept_with_additions(paths.config_file.read_text(), USER_FILE,
                               [f'api_key = "{SECRET}"', 'max_age = "2h"'])


def assert_kept_with_additions(new_text: str, old_text: str, added: list[str]) -> None:
    """Every line of the old file is still there, in order and to the letter (comments,
    alignment); what is new is exactly the added lines (and blank lines)."""
    remaining = iter(new_text.splitlines())
    for line in old_text.splitlines():
        assert any(candidate == line for candidate in remaining), f"lost or changed: {line!r}"
    extra = list(new_text.splitlines())
    for line in old_text.splitlines():
        extra.remove(line)
    assert [line for line in extra if line.strip()] == added


def test_config_set_follows_a_symlinked_config_file_and_keeps_the_link(tmp_path):
    real = tmp_path / "dotfiles" / "telemetry.toml"
    real.parent.mkdir()
    real.write_text(USER_FILE)
    link = tmp_path / "config" / "telemetry.toml"
    link.parent.mkdir()
    link.symlink_to(real)
    set_value_in_file(link, "telemetry.api_key", SECRET)
    assert link.is_symlink()
    assert mode(real) == 0o600 and f'api_key = "{SECRET}"' in real.read_text()


KILL_BEFORE_RENAME = textwrap.dedent("""\
    import os, signal, sys
    from pathlib import Path
    from branchpy_telemetry.client.infra import atomic_write
    from branchpy_telemetry.client.contracts.config import set_value_in_file

    def killed(src, dst):  # the temp file is written and fsynced; the process dies before the rename
        os.kill(os.getpid(), signal.SIGKILL)

    atomic_write.os.replace = killed
    set_value_in_file(Path(sys.argv[1]), "telemetry.api_key", "NEW-" + "k" * 40)
    """)


def test_a_kill_between_temp_write_and_rename_leaves_the_old_file_whole(tmp_path):
    config = tmp_path / "config" / "telemetry.toml"
    config.parent.mkdir(mode=0o700)
    config.write_text(USER_FILE)
    config.chmod(0o600)
    proc = subprocess.run([sys.executable, "-c", KILL_BEFORE_RENAME, str(config)], capture_output=True,
                          timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert config.read_text() == USER_FILE and mode(config) == 0o600
    leftovers = [p for p in config.parent.iterdir() if p != config]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".telemetry.toml.tmp-")
    assert mode(leftovers[0]) == 0o600  # the half-done secret was never readable by others
    set_value_in_file(config, "telemetry.api_key", SECRET)  # and the next write works
    assert load_config(config, env={}).telemetry.api_key == SECRET


def test_a_full_disk_leaves_the_old_config_whole_and_says_so(tiny_tmpfs):
    config = tiny_tmpfs / "telemetry.toml"
    config.write_text(USER_FILE)
    fd = os.open(tiny_tmpfs / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError):
            while True:
                os.write(fd, b"\0" * 1024)
    finally:
        os.close(fd)
    with pytest.raises(StorageError) as caught:
        set_value_in_file(config, "telemetry.api_key", "k" * 6000)
    assert "unchanged" in caught.value.hint
    assert config.read_text() == USER_FILE
    assert sorted(p.name for p in tiny_tmpfs.iterdir()) == ["filler", "telemetry.toml"]  # no temp left


def test_local_backend_keys_file_is_0600_in_a_0700_folder_even_over_a_0644_one(paths):
    from branchpy_telemetry.backend.local_stack import ensure_local_keys
    from branchpy_telemetry.backend.sinks.memory import MemorySink

    keys_file = paths.local_backend_keys_file
    paths.config_dir.mkdir(parents=True)
    paths.config_dir.chmod(0o755)
    keys_file.write_text('{"ingest": "stale", "read": "stale"}')
    keys_file.chmod(0o644)
    keys = ensure_local_keys(MemorySink(), paths)
    assert json.loads(keys_file.read_text()) == keys
    assert mode(keys_file) == 0o600 and mode(paths.config_dir) == 0o700


def test_tcp_transport_token_file_is_0600_in_a_0700_folder(start_daemon, subprocess_env, paths):

    subprocess_env["BRANCHPY_TELEMETRY_TRANSPORT"] = "tcp"
    os.environ["BRANCHPY_TELEMETRY_TRANSPORT"] = "tcp"
    try:
        daemon = start_daemon("--idle-timeout", "0")
        assert json.loads(paths.control_address_file.read_text())["token"]
        assert mode(paths.control_address_file) == 0o600 and mode(paths.run_dir) == 0o700
        assert daemon.call("status")["pid"] == daemon.proc.pid
    finally:
        del os.environ["BRANCHPY_TELEMETRY_TRANSPORT"]


def test_nothing_under_the_telemetry_home_is_open_to_other_users(subprocess_env, paths, tmp_path):
    """After a session that touches every kind of file (a daemon started by the CLI,
    its log, config with a key, spool, export, a dry-run sync with outbox, ledger,
    checkpoints and counters), no file or folder grants anything to group or others."""
    os.umask(0o022)
    env = {**subprocess_env}
    steps = [
        ("config", "set", "telemetry.api_key", SECRET),
        ("config", "set", "telemetry.auto.dry_run", "true"),
        ("emit", "--category", "command", "--name", "analyze", "--duration-ms", "5"),
        ("export", "--output", str(tmp_path / "out" / "pkg.json")),
        ("sync",),
        ("status",),
    ]
    (tmp_path / "out").mkdir()
    try:
        for step in steps:
            result = cli(env, *step)
            assert result.returncode == 0, (step, result.stderr)
        home = Path(env["BRANCHPY_TELEMETRY_HOME"])
        entries = [Path(root) / name for root, dirs, files in os.walk(home) for name in dirs + files]
        assert len(entries) > 15
        open_to_others = {str(p.relative_to(home)): oct(mode(p)) for p in entries if mode(p) & 0o077}
        assert open_to_others == {}
    finally:
        cli(env, "daemon", "stop")
