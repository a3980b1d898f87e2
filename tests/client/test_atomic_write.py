"""The one atomic-write helper: exact modes whatever the umask, nothing left
behind when a write fails, the old file whole until the new one is complete."""

from __future__ import annotations

import json
import os
import stat

import pytest

from branchpy_telemetry.client.infra.atomic_write import AtomicFile, is_temp_file, write_atomic


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_a_new_file_is_0600_by_default_and_exactly_the_mode_asked_for_whatever_the_umask(tmp_path, umask_022):
    write_atomic(tmp_path / "secret.json", b"{}")
    write_atomic(tmp_path / "unit.service", b"[Unit]\n", mode=0o644)
    os.umask(0o277)  # a umask stricter than the mode asked for does not change it either
    write_atomic(tmp_path / "strict.service", b"[Unit]\n", mode=0o644)
    assert mode(tmp_path / "secret.json") == 0o600
    assert mode(tmp_path / "unit.service") == 0o644
    assert mode(tmp_path / "strict.service") == 0o644


def test_replacing_a_0644_file_leaves_it_0600(tmp_path, umask_022):
    target = tmp_path / "telemetry.toml"
    target.write_text("old")
    target.chmod(0o644)
    write_atomic(target, b"api_key = 'k'")
    assert mode(target) == 0o600 and target.read_bytes() == b"api_key = 'k'"


def test_an_error_raised_while_streaming_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "report.json"
    target.write_bytes(b'{"old": true}')
    with pytest.raises(TypeError), AtomicFile(target) as file:
        file.write(b'{"findings":[')
        file.write(json.dumps({"bad": object()}).encode())  # serialisation fails mid-stream
    assert target.read_bytes() == b'{"old": true}'
    assert list(tmp_path.iterdir()) == [target]


def test_a_streamed_file_appears_whole_only_when_the_block_ends(tmp_path):
    target = tmp_path / "package.json"
    with AtomicFile(target) as file:
        file.write(b"[1,")
        assert not target.exists() and is_temp_file(file.temp) and file.temp.parent == tmp_path
        file.write(b"2]")
    assert target.read_bytes() == b"[1,2]" and list(tmp_path.iterdir()) == [target]


def test_a_failed_rename_leaves_the_old_file_whole_and_removes_the_temp_file(tmp_path):
    target = tmp_path / "counters.json"
    target.write_bytes(b"old")
    file = AtomicFile(target)
    file.write(b"new")
    with pytest.raises(OSError):
        file.commit(tmp_path / "missing-folder" / "counters.json")  # the rename cannot happen
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]


def test_commit_new_never_overwrites_and_keeps_its_temp_file_for_the_caller_to_decide(tmp_path):
    target = tmp_path / "install.json"
    first = AtomicFile(target)
    first.write(b"first")
    assert first.commit_new() is True
    second = AtomicFile(target)
    second.write(b"second")
    assert second.commit_new() is False and target.read_bytes() == b"first"
    assert second.temp.exists()
    second.commit()  # replace after all
    assert target.read_bytes() == b"second" and list(tmp_path.iterdir()) == [target]

