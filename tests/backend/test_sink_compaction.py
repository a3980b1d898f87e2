"""Compaction (sinks/compaction.py) folds the striped rows of old hours into one
row per key without changing any answer — also with late events arriving for
folded hours, in small batches, and while uploads write the same hours — and
`purge` runs it."""

from __future__ import annotations

import json
import subprocess
import threading
from datetime import UTC, datetime, timedelta

import pytest

from branchpy_telemetry.backend.sinks.memory import MemorySink

from ..conftest import console_script
from ..service_markers import sink_kind_params
from .conftest import BASE_TS, make_package
from .sink_answers import answers

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CUT = BASE_TS + timedelta(hours=30, minutes=20)  # hours before 06:00 of day 2 get folded
STRIPED = ("rollup_hour", "rollup_dim", "hist", "session_hour", "error_groups", "usage_rollup", "name_hist",
           "error_rollup", "upload_hour")
TIME = {"rollup_hour": "hour + 3600 <= ?", "rollup_dim": "hour + 3600 <= ?",
        "session_hour": "hour + 3600 <= ?", "hist": "start + level <= ?",
        "error_groups": "last_us < ? * 1000000", "usage_rollup": "start + level <= ?",
        "name_hist": "start + level <= ?", "error_rollup": "start + level <= ?",
        "upload_hour": "hour + 3600 <= ?"}


def striped_packages(count: int, seed: int = 300):
    """Small packages spread over ~2.5 days from BASE_TS: many packages (so many shards) per hour."""
    return [make_package(40, seed=seed + i, start=BASE_TS + timedelta(hours=(i * 5) % 60, minutes=i),
                         step=timedelta(seconds=113), sessions=3, governance_id=f"gov-{i % 5}")
            for i in range(count)]


def store_all(sinks, packages) -> None:
    """Each package received an hour after its last event (upload_hour is keyed by receipt)."""
    for i, package in enumerate(packages):
        received = datetime.fromisoformat(package.summary.last_event_ts) + timedelta(hours=1)
        for sink in sinks:
            sink.store_package(package, receipt=f"sha256:{i}", body_bytes=100, received_at=received)


def shard_rows(sink, before: datetime) -> dict[str, tuple[int, int]]:
    """Per striped table: (rows outside shard 0 wholly before `before`, rows outside shard 0 after it)."""
    cut = int(before.timestamp())
    out = {}
    with sink._read() as cur:
        for table in STRIPED:
            cur.execute(f"SELECT COUNT(*) FROM {table} WHERE shard <> 0 AND {TIME[table]}", (cut,))
            old = cur.fetchone()[0]
            cur.execute(f"SELECT COUNT(*) FROM {table} WHERE shard <> 0")
            out[table] = (old, cur.fetchone()[0] - old)
    return out


def assert_agree(sink, memory) -> None:
    got, want = answers(sink), answers(memory)
    assert [key for key in want if got[key] != want[key]] == []


@pytest.fixture(params=sink_kind_params(["sqlite", "mysql"]))
def sql_sink(request):
    sink = request.getfixturevalue(f"{request.param}_sink")
    sink.configure_writes(shards=16)
    return sink


def test_folding_old_hours_changes_no_answer_and_leaves_one_row_per_key(sql_sink):
    memory = MemorySink()
    store_all([sql_sink, memory], striped_packages(48))
    before = shard_rows(sql_sink, CUT)
    assert all(old > 0 and recent > 0 for old, recent in before.values()), before  # really striped
    assert_agree(sql_sink, memory)
    folded = sql_sink.compact(CUT, batch_size=7)  # small batches: a key's rows split across batches
    assert folded == sum(old for old, _ in before.values())
    after = shard_rows(sql_sink, CUT)
    assert {table: old for table, (old, _) in after.items()} == dict.fromkeys(STRIPED, 0)
    assert {table: recent for table, (_, recent) in after.items()} == {t: r for t, (_, r) in before.items()}
    assert_agree(sql_sink, memory)
    assert sql_sink.compact(CUT) == 0

    store_all([sql_sink, memory], striped_packages(12, seed=900))  # late events for folded hours
    assert any(old for old, _ in shard_rows(sql_sink, CUT).values())
    assert_agree(sql_sink, memory)
    assert sql_sink.compact(CUT) > 0
    assert_agree(sql_sink, memory)


def test_uploads_into_the_hours_being_folded_lose_nothing(sql_sink):
    memory = MemorySink()
    store_all([sql_sink, memory], striped_packages(24))
    late = striped_packages(24, seed=700)
    errors: list[BaseException] = []
    done = threading.Event()

    def upload():
        try:
            store_all([sql_sink], late)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=upload)
    thread.start()
    folds = 0
    while not done.is_set():
        folds += 1
        sql_sink.compact(CUT, batch_size=5)
    thread.join(60)
    sql_sink.compact(CUT)
    assert not errors and folds >= 1
    store_all([memory], late)
    assert_agree(sql_sink, memory)


def test_purge_folds_the_rows_older_than_compact_older_than(tmp_path):
    from branchpy_telemetry.backend.sinks.registry import open_sink

    url = f"sqlite:///{tmp_path / 'events.db'}"
    sink = open_sink(url)
    try:
        store_all([sink], striped_packages(20))
        striped = sum(old for old, _ in shard_rows(sink, datetime.now(UTC)).values())
    finally:
        sink.close()
    # a retention longer than the data's age on any date: nothing is deleted, only folded
    keep = f"{(datetime.now(UTC) - BASE_TS).days + 365}d"
    done = subprocess.run([console_script("branchpy-telemetry-backend"), "purge", "--older-than", keep,
                           "--compact-older-than", "1h", "--json", "--db", url],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["deleted"], report["compacted"]) == (0, striped) and striped > 0
    text = subprocess.run([console_script("branchpy-telemetry-backend"), "purge", "--older-than", keep,
                           "--db", url], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert text.stdout.splitlines()[1].startswith("folded 0 striped aggregate rows older than ")
