"""The governance id: random, stored, stable across processes, resettable."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid

import msgspec

from branchpy_telemetry.daemon.identity import load_or_create_governance_id, reset_governance_id

CHILD = ("from branchpy_telemetry.client.contracts.paths import resolve_paths\n"
         "from branchpy_telemetry.daemon.identity import load_or_create_governance_id\n"
         "print(load_or_create_governance_id(resolve_paths()))\n")


def test_the_id_is_a_random_uuid_created_on_first_use_and_then_stable(paths):
    assert not paths.install_file.exists()
    gid = load_or_create_governance_id(paths)
    assert uuid.UUID(gid).version == 4
    assert load_or_create_governance_id(paths) == gid
    assert stat.S_IMODE(os.stat(paths.install_file).st_mode) == 0o600


def test_processes_starting_together_agree_on_one_id(paths, subprocess_env):
    procs = [subprocess.Popen([sys.executable, "-c", CHILD], env=subprocess_env, stdout=subprocess.PIPE,
                              text=True) for _ in range(4)]
    ids = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(ids) == 1 and ids == {load_or_create_governance_id(paths)}


def test_reset_gives_a_new_id_that_then_stays(paths):
    old = load_or_create_governance_id(paths)
    new = reset_governance_id(paths)
    assert new != old and load_or_create_governance_id(paths) == new


def test_an_unreadable_install_file_is_replaced_by_a_fresh_id(paths):
    paths.install_file.parent.mkdir(parents=True, exist_ok=True)
    paths.install_file.write_text("{garbage")
    gid = load_or_create_governance_id(paths)
    assert uuid.UUID(gid) and msgspec.json.decode(paths.install_file.read_bytes())["governance_id"] == gid


def test_reset_keeps_other_keys_in_the_install_file(paths):
    paths.install_file.parent.mkdir(parents=True, exist_ok=True)
    paths.install_file.write_bytes(msgspec.json.encode({"governance_id": str(uuid.uuid4()), "other": 1}))
    reset_governance_id(paths)
    assert msgspec.json.decode(paths.install_file.read_bytes())["other"] == 1
