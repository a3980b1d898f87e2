"""emit() under real OS-level write failures: it never raises, it counts, it tears no line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from branchpy_telemetry.client.contracts.event import event_decoder
from branchpy_telemetry.client.contracts.paths import resolve_paths
from branchpy_telemetry.client.emitter.emit import Emitter

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX resource limits and users")

# A child process: one event, then a file-size limit a little over two more lines, then ten
# more events. Crossing RLIMIT_FSIZE gives a short write and then EFBIG (SIGXFSZ ignored).
FILE_SIZE_LIMIT_CHILD = textwrap.dedent("""
    import json, os, resource, signal
    from branchpy_telemetry.client.emitter.emit import Emitter
    from branchpy_telemetry.client.contracts.paths import resolve_paths
    paths = resolve_paths()
    emitter = Emitter(paths)
    attrs = {"pad": "y" * 150}
    results = [emitter.emit("command", "fill", attrs=attrs)]
    line = os.path.getsize(paths.active_spool)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = line * 3 + line // 2
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    for _ in range(10):
        results.append(emitter.emit("command", "fill", attrs=attrs))
    print(json.dumps({"results": results, "stats": emitter.stats.snapshot(), "limit": limit}))
""")

EMIT_AS_NOBODY_CHILD = textwrap.dedent("""
    import json, os
    from branchpy_telemetry.client import emit
    from branchpy_telemetry.client.emitter.emit import emitter_stats
    if os.geteuid() == 0:  # root ignores permission bits: become `nobody` (imports are done)
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    results = [emit("command", "ro") for _ in range(3)]
    print(json.dumps({"results": results, "stats": emitter_stats()}))
""")


def test_file_size_limit_mid_line_drops_events_counted_and_leaves_no_torn_line(paths, subprocess_env):
    proc = subprocess.run([sys.executable, "-c", FILE_SIZE_LIMIT_CHILD], env=subprocess_env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["results"] == [True, True, True] + [False] * 8
    assert out["stats"] == {"emitted": 3, "dropped": {"write_error": 8, "invalid": 0, "consent": 0},
                            "dropped_attrs": 0}
    assert "emit.dropped reason=write_error" in proc.stderr
    assert proc.stderr.count("emit.dropped") == 1  # logged once per kind
    data = paths.active_spool.read_bytes()
    assert len(data) < out["limit"] and data.endswith(b"\n")
    assert [event_decoder.decode(line).name for line in data.splitlines()] == ["fill"] * 3


def test_read_only_spool_folder_drops_events_counted_without_raising(subprocess_env):
    # Root ignores permission bits, so as root the child drops to `nobody` over a folder
    # that `nobody` owns but cannot write to.
    home = Path(tempfile.mkdtemp(prefix="bp-ro-"))
    try:
        spool = home / "state" / "spool"
        spool.mkdir(parents=True)
        spool.chmod(0o500)
        if os.geteuid() == 0:
            for path in (home, home / "state", spool):
                os.chown(path, 65534, 65534)
        env = dict(subprocess_env, BRANCHPY_TELEMETRY_HOME=str(home))
        proc = subprocess.run([sys.executable, "-c", EMIT_AS_NOBODY_CHILD], env=env,
                              capture_output=True, text=True, timeout=60, cwd="/")
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert out == {"results": [False] * 3,
                       "stats": {"emitted": 0, "dropped": {"write_error": 3, "invalid": 0, "consent": 0},
                                 "dropped_attrs": 0}}
        assert os.listdir(spool) == []
    finally:
        spool.chmod(0o700)
        subprocess.run(["rm", "-rf", str(home)], check=True)


def test_spool_path_blocked_by_a_file_counts_write_errors_and_logs_once(paths, caplog):
    paths.spool_dir.parent.mkdir(parents=True)
    paths.spool_dir.write_text("a file where the spool folder should be")
    emitter = Emitter(paths)
    with caplog.at_level(logging.WARNING, logger="branchpy_telemetry.client.emitter.emit"):
        results = [emitter.emit("command", "blocked") for _ in range(5)]
    assert results == [False] * 5
    assert emitter.stats.snapshot()["dropped"]["write_error"] == 5
    assert len([r for r in caplog.records if "emit.dropped" in r.getMessage()]) == 1


def test_full_disk_enospc_drops_events_counted_and_leaves_only_whole_lines(tiny_tmpfs, monkeypatch):
    monkeypatch.setenv("BRANCHPY_TELEMETRY_HOME", str(tiny_tmpfs))
    paths = resolve_paths()
    emitter = Emitter(paths)
    results = [emitter.emit("command", "fill", attrs={"pad": "z" * 200, "i": i}) for i in range(200)]
    stats = emitter.stats.snapshot()
    assert True in results and results[-1] is False
    assert stats["emitted"] == results.count(True) and stats["dropped"]["write_error"] == results.count(False)
    data = paths.active_spool.read_bytes()
    assert data.endswith(b"\n")
    decoded = [event_decoder.decode(line) for line in data.splitlines()]
    assert [e.attrs["i"] for e in decoded] == [i for i, ok in enumerate(results) if ok]
    emitter.close()
