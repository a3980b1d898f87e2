"""Locations: BRANCHPY_TELEMETRY_HOME relocates everything;
over-long socket paths fall back to a short private directory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import platformdirs
import pytest

from branchpy_telemetry.client.contracts.paths import MAX_IPC_PATH_BYTES, ensure_private_dir, resolve_paths


def test_home_relocates_everything(tmp_path):
    home = tmp_path / "h"
    p = resolve_paths({"BRANCHPY_TELEMETRY_HOME": str(home)})
    assert p.config_file == home / "config" / "telemetry.toml"
    assert p.spool_dir == home / "state" / "spool"
    assert p.active_spool == home / "state" / "spool" / "events.jsonl"
    assert p.outbox_dir.parent == home / "state"
    assert p.ledger_file.parent == home / "state"
    assert p.log_dir == home / "log"
    assert p.extension_dir == home / "extension"
    assert p.run_dir == home / "run"
    assert p.control_endpoint == f"ipc://{home}/run/control.sock"


def test_every_state_file_has_its_place_here_under_the_same_names_as_before(tmp_path):
    home = tmp_path / "h"
    p = resolve_paths({"BRANCHPY_TELEMETRY_HOME": str(home)})
    assert p.exports_file == home / "state" / "exports.jsonl"
    assert p.reviews_file == home / "state" / "reviews.jsonl"
    assert p.staging_dir == home / "state" / "staging"
    assert p.local_backend_keys_file == home / "config" / "local-backend.json"
    assert p.control_address_file == home / "run" / "control.json"


def test_defaults_use_platform_dirs_and_vscode_global_storage(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / ".local/share"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    p = resolve_paths({"XDG_RUNTIME_DIR": str(tmp_path)})
    assert p.config_file == tmp_path / ".config" / "branchpy" / "telemetry.toml"
    assert p.spool_dir == tmp_path / ".local/share" / "branchpy" / "telemetry" / "spool"
    assert p.run_dir == tmp_path / "branchpy"
    assert p.extension_dir == (tmp_path / ".config" / "Code" / "User" / "globalStorage"
                               / "branchpy.branchpy" / "telemetry")


def test_long_socket_path_falls_back_to_a_folder_in_the_users_state_dir(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    p = resolve_paths({"BRANCHPY_TELEMETRY_HOME": str(deep)})
    assert len(os.fsencode(str(p.progress_socket))) <= MAX_IPC_PATH_BYTES
    assert p.run_dir.parent == Path(platformdirs.user_state_dir("branchpy"))  # no other user can create it
    assert p.run_dir.name.startswith("run-")
    # Stable: the same long path maps to the same short dir; another one does not.
    assert resolve_paths({"BRANCHPY_TELEMETRY_HOME": str(deep)}).run_dir == p.run_dir
    assert resolve_paths({"BRANCHPY_TELEMETRY_HOME": str(deep) + "x"}).run_dir != p.run_dir
    # Everything else stays under the long home.
    assert p.spool_dir.is_relative_to(deep)


def test_missing_runtime_dir_falls_back_to_the_users_state_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    p = resolve_paths({})
    assert p.run_dir == tmp_path / ".local" / "state" / "branchpy" / "run"


@pytest.mark.parametrize("runtime_mode", [0o755, 0o1777])
def test_a_runtime_dir_open_to_others_is_not_used(monkeypatch, tmp_path, runtime_mode):
    """XDG_RUNTIME_DIR=/tmp (seen in containers) would make the socket folder
    /tmp/branchpy: a name any user can create first."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(runtime_mode)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    p = resolve_paths({"XDG_RUNTIME_DIR": str(shared)})
    assert p.run_dir == tmp_path / ".local" / "state" / "branchpy" / "run"


def test_ensure_private_dir_tightens_permissions(tmp_path):
    target = tmp_path / "run"
    target.mkdir(mode=0o755)
    target.chmod(0o755)
    ensure_private_dir(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700


def test_ensure_private_dir_refuses_a_file(tmp_path):
    (tmp_path / "run").write_text("not a dir")
    with pytest.raises(FileExistsError):
        ensure_private_dir(tmp_path / "run")


def test_ensure_private_dir_never_follows_or_chmods_a_symlink(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o755)
    victim.chmod(0o755)
    (tmp_path / "run").symlink_to(victim)
    with pytest.raises(PermissionError, match="symbolic link"):
        ensure_private_dir(tmp_path / "run")
    assert stat.S_IMODE(victim.stat().st_mode) == 0o755


def test_ensure_private_dir_refuses_a_world_writable_folder_of_ours(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    target.chmod(0o777)
    with pytest.raises(PermissionError, match="may be written by every user"):
        ensure_private_dir(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o777
