"""Read-only commands never create, change or delete a file, over the real control socket.

Every file and folder under the test's telemetry home (config, state with spool, outbox,
quarantine, ledger, checkpoints and counters, the run folder with the sockets and the lock)
is recorded by relative path, size and mtime before and after the commands: the two must be
equal. Two things are left out, and why:
- the daemon's own log file (`log/daemon.log`): the daemon logs requests (a refused one at info);
- housekeeping: the daemon runs with `--housekeeping-interval 0`, so no timer touches the files
  while the commands run.
The outbox and the quarantine hold crash leftovers (stale temp files) that a delivery or
housekeeping would sweep: a read-only command must leave them too.
`preview` of a VALID package remembers it (`reviews.jsonl`, what `upload --file --reviewed`
checks): that one write is documented and asserted on its own.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from branchpy_telemetry.client.contracts.errors import TelemetryError
from branchpy_telemetry.client.infra.atomic_write import temp_path_for
from branchpy_telemetry.daemon.delivery.outbox import STALE_TEMP_SECONDS, Outbox

from . import recording_server as rs
from .test_checkpoints import append

READ_ONLY_REQUESTS = [
    ("status", {}),
    ("history", {}),
    ("history", {"limit": 1}),
    ("catalog", {}),
    ("config.get", {}),
    ("config.get", {"key": "telemetry.mode"}),
    ("schema", {}),
    ("schema", {"document": "bridge"}),
    ("schema", {"document": "event"}),
    # `branchpy telemetry mode` with no argument asks `status`; a `mode` request without one is refused
    ("mode", {}),
]


def snapshot(root: Path, ignored: set[Path]) -> dict[str, tuple]:
    """relative path -> (kind, size, mtime_ns) for everything under `root` (links not followed)."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            if path in ignored:
                continue
            st = path.lstat()
            kind = "dir" if path.is_dir() and not path.is_symlink() else "file"
            out[str(path.relative_to(root))] = (kind, None if kind == "dir" else st.st_size, st.st_mtime_ns)
    return out


def plant_stale_temp_file(folder: Path, name: str) -> Path:
    """What a crash between write and rename leaves behind, old enough to be swept."""
    folder.mkdir(parents=True, exist_ok=True)
    leftover = temp_path_for(folder / name)
    leftover.write_bytes(b'{"package_id": "crashed", "summ')
    old = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(leftover, (old, old))
    return leftover


@pytest.fixture
def lived_in(paths, start_daemon, telemetry_home, tmp_path):
    """A daemon whose home has something of everything: spool files, an outbox package, a
    quarantined one, receipts, checkpoints, counters, an exported package, crash leftovers."""
    server = rs.RecordingServer().start()
    try:
        paths.config_file.parent.mkdir(parents=True, exist_ok=True)
        paths.config_file.write_text(f'[telemetry]\nendpoint = "{server.base_url}"\n')
        append(paths.active_spool, 5)
        daemon = start_daemon("--idle-timeout", "0", "--housekeeping-interval", "0")
        package = tmp_path / "rc-metrics.json"
        daemon.call("export", {"output": str(package)}, timeout=60)
        daemon.call("sync", timeout=60)  # receipts, checkpoints, counters
        append(paths.active_spool, 3)
        outbox = Outbox(paths, 10 * 1024 * 1024)
        outbox.add(rs.make_package_bytes(2))
        outbox.quarantine(outbox.add(rs.make_package_bytes(1)), "rejected by the test")
    finally:
        server.stop()
    leftovers = [plant_stale_temp_file(paths.outbox_dir, "00000000000000000001-crashed.json"),
                 plant_stale_temp_file(paths.quarantine_dir, "00000000000000000002-crashed.json")]
    return daemon, package, leftovers


def test_read_only_commands_leave_every_file_as_it_was(lived_in, paths, telemetry_home, tmp_path):
    daemon, package, leftovers = lived_in
    not_a_valid_package = tmp_path / "edited.json"
    not_a_valid_package.write_bytes(package.read_bytes().replace(b'"summary"', b'"summry"', 1))
    ignored = {paths.daemon_log}
    before = snapshot(telemetry_home, ignored)
    for cmd, args in READ_ONLY_REQUESTS + [("preview", {"file": str(not_a_valid_package)})]:
        try:
            daemon.call(cmd, args, timeout=30)
        except TelemetryError:
            pass  # a refused request must change nothing either
    assert snapshot(telemetry_home, ignored) == before
    assert all(leftover.exists() for leftover in leftovers)


def test_preview_of_a_valid_package_writes_only_its_review_record(lived_in, paths, telemetry_home):
    daemon, package, _ = lived_in
    reviews = str(paths.reviews_file.relative_to(telemetry_home))
    before = snapshot(telemetry_home, {paths.daemon_log})
    assert daemon.call("preview", {"file": str(package)}, timeout=30)["valid"] is True
    after = snapshot(telemetry_home, {paths.daemon_log})
    changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    state_dir = str(paths.data_dir.relative_to(telemetry_home))
    assert changed <= {reviews, state_dir} and reviews in changed  # the record, and the folder it is in
