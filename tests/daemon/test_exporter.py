"""The exporter: windows, sources, skipped lines, size-capped parts, files written."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from branchpy_telemetry.client.config import load_config
from branchpy_telemetry.client.errors import StorageError, UsageError
from branchpy_telemetry.client.event import ErrorInfo, EventRecord, new_event_id
from branchpy_telemetry.client.schema import decode_package
from branchpy_telemetry.client.spool import rotate_spool
from branchpy_telemetry.client.timewindow import format_ts
from branchpy_telemetry.daemon import package_builder
from branchpy_telemetry.daemon.counters import CounterStore
from branchpy_telemetry.daemon.exporter import export_window
from branchpy_telemetry.daemon.package_builder import EventTooLargeError, build_packages
from branchpy_telemetry.daemon.package_writer import find_export_record, make_header

T0 = datetime(2026, 11, 28, 1, 0, 0, tzinfo=UTC)
_enc = msgspec.json.Encoder()


def record(i: int, *, ts: datetime | None = None, **over) -> EventRecord:
    fields = dict(event_id=new_event_id(), ts=format_ts(ts or T0 + timedelta(seconds=i)),
                  category="command", source="cli", name=f"cmd{i % 3}", duration_ms=float(i),
                  status="ok", session_id="s1", correlation_id=f"c{i % 2}",
                  attrs={"n": i, "flag": True})
    fields.update(over)
    return EventRecord(**fields)


def write_lines(path: Path, records: list[EventRecord], extra: bytes = b"") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as fh:
        fh.write(b"".join(_enc.encode(r) + b"\n" for r in records) + extra)


def read_package(path: Path):
    return decode_package(path.read_bytes())


def config(**overrides):
    return load_config(None, env={}, overrides=overrides)


def test_export_of_a_small_window_writes_exactly_the_output_path(paths, tmp_path):
    recs = [record(i) for i in range(10)]
    write_lines(paths.active_spool, recs)
    out = tmp_path / "rc-metrics.json"
    result = export_window(paths, config(), out, None, None)
    assert result.files == [str(out)]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "rc-metrics.json", "rc-metrics.redactions.json"]
    pkg = read_package(out)
    assert [e.event_id for e in pkg.summary.events] == [r.event_id for r in recs]
    assert pkg.summary.event_count == 10 and pkg.summary.part == 1 and pkg.summary.last_part
    assert result.package_ids == [pkg.package_id] and result.events == 10
    assert result.bytes == out.stat().st_size
    assert pkg.summary.first_event_ts == recs[0].ts and pkg.summary.last_event_ts == recs[-1].ts


def test_every_export_is_counted_for_status(paths, tmp_path):
    write_lines(paths.active_spool, [record(i, attrs={"n": i, "mode": "x" * 50}) for i in range(600)])
    export_window(paths, config(), tmp_path / "one.json", None, None)
    split = export_window(paths, config(**{"telemetry.max_upload_size_mb": 0.05}), tmp_path / "two.json",
                          None, None)
    counters = CounterStore(paths.counters_file).snapshot()
    assert counters["exported.events"] == 1200 and counters["exported.packages"] == 1 + len(split.files)


def test_a_large_window_is_split_into_complete_parts_each_within_the_cap(paths, tmp_path):
    recs = [record(i, attrs={"n": i, "mode": "x" * 50}) for i in range(600)]
    write_lines(paths.active_spool, recs)
    cfg = config(**{"telemetry.max_upload_size_mb": 0.05})
    out = tmp_path / "pkg.json"
    result = export_window(paths, cfg, out, None, None)
    assert len(result.files) >= 3
    assert not out.exists()
    seen = []
    for n, name in enumerate(result.files, start=1):
        path = Path(name)
        assert path.name == f"pkg.part{n:03d}.json"
        assert path.stat().st_size <= cfg.max_upload_bytes
        pkg = read_package(path)
        assert pkg.summary.part == n and pkg.summary.last_part == (n == len(result.files))
        assert pkg.summary.event_count == len(pkg.summary.events)
        # each part's aggregates cover exactly its own events
        assert sum(m.count for m in pkg.performance_metrics.values()) == len(pkg.summary.events)
        seen += [e.event_id for e in pkg.summary.events]
    assert seen == [r.event_id for r in recs]
    assert len(set(result.package_ids)) == len(result.files)
    # parts are filled close to the cap, not split early
    sizes = [Path(f).stat().st_size for f in result.files[:-1]]
    assert min(sizes) > cfg.max_upload_bytes - 2_000


def test_split_redaction_report_points_into_the_right_part_file(paths, tmp_path):
    recs = [record(i, attrs={"file": f"/home/alice/game/s{i}.rpy", "pad": "y" * 80}) for i in range(300)]
    write_lines(paths.active_spool, recs)
    out = tmp_path / "pkg.json"
    result = export_window(paths, config(**{"telemetry.max_upload_size_mb": 0.03}), out, None, None)
    assert len(result.files) > 1
    report = msgspec.json.decode(Path(result.report_file).read_bytes())
    assert report["counts"] == {"raw_path": 300} == result.redactions
    by_file: dict[str, int] = {}
    for f in report["findings"]:
        by_file[f["file"]] = by_file.get(f["file"], 0) + 1
        pkg = msgspec.json.decode((tmp_path / f["file"]).read_bytes())
        index = int(f["pointer"].split("/")[3])
        assert f["pointer"] == f"/summary/events/{index}/attrs/file"
        event = pkg["summary"]["events"][index]
        assert "file" not in event["attrs"] and event["attrs"]["pad"] == "y" * 80
    for name in result.files:
        assert by_file[Path(name).name] == len(read_package(Path(name)).summary.events)
    assert b"alice" not in Path(result.report_file).read_bytes()


def test_undecodable_and_partial_lines_are_skipped_and_counted(paths, tmp_path):
    good = [record(i) for i in range(5)]
    write_lines(paths.active_spool, good[:2], extra=b"{not json\n" + b'{"v":1,"event_id":"x"}\n\n')
    write_lines(paths.active_spool, good[2:], extra=b'{"v": 1, "event_id": "partial-no-newl')
    result = export_window(paths, config(), tmp_path / "o.json", None, None)
    pkg = read_package(tmp_path / "o.json")
    assert [e.event_id for e in pkg.summary.events] == [r.event_id for r in good]
    assert result.skipped_lines == 3 == pkg.summary.skipped_lines


def test_durations_that_are_not_measurements_are_skipped_and_counted(paths, tmp_path):
    """Negative, or so large that a per-command total would overflow a float:
    such a line (from the extension or a hand-written spool) fails to validate."""
    good = [record(i) for i in range(3)]
    huge = [record(10 + i, name="cmd0", duration_ms=8.98846567431158e307) for i in range(2)]
    write_lines(paths.active_spool, [good[0], *huge, record(20, duration_ms=-5.0), *good[1:]])
    result = export_window(paths, config(), tmp_path / "o.json", None, None)
    pkg = read_package(tmp_path / "o.json")
    assert [e.event_id for e in pkg.summary.events] == [r.event_id for r in good]
    assert result.skipped_lines == 3 == pkg.summary.skipped_lines
    assert pkg.performance_metrics["cmd0"].total_ms == 0.0


def test_a_full_disk_is_a_storage_error_that_leaves_no_file_and_loses_no_event(paths, tmp_path, tiny_tmpfs):
    recs = [record(i, attrs={"pad": "p" * 150, "file": f"/home/alice/s{i}.rpy"}) for i in range(400)]
    write_lines(paths.active_spool, recs)  # ~120 KB of package: more than the 16 KiB disk
    spool_before = paths.active_spool.read_bytes()
    with pytest.raises(StorageError) as info:
        export_window(paths, config(**{"telemetry.max_upload_size_mb": 0.05}), tiny_tmpfs / "o.json",
                      None, None)
    assert "No space left on device" in str(info.value) and "disk is not full" in info.value.hint
    assert list(tiny_tmpfs.iterdir()) == []  # no part, no temporary file, no redaction report
    assert paths.active_spool.read_bytes() == spool_before
    result = export_window(paths, config(), tmp_path / "o.json", None, None)
    assert result.events == 400 and result.redactions == {"raw_path": 400}


def test_no_inode_left_for_the_part_is_a_storage_error_that_leaves_no_file(paths, mount_tmpfs):
    """The redaction report's temporary file takes the last inode; the part's cannot be created."""
    write_lines(paths.active_spool, [record(i) for i in range(3)])
    disk = mount_tmpfs("size=1m,nr_inodes=2")  # the root folder and one file
    with pytest.raises(StorageError, match="No space left on device"):
        export_window(paths, config(), disk / "o.json", None, None)
    assert list(disk.iterdir()) == []


def test_window_keeps_events_with_from_le_ts_lt_to(paths, tmp_path):
    recs = [record(i, ts=T0 + timedelta(minutes=i)) for i in range(10)]
    write_lines(paths.active_spool, recs)
    start, end = T0 + timedelta(minutes=3), T0 + timedelta(minutes=7)
    export_window(paths, config(), tmp_path / "o.json", start, end)
    pkg = read_package(tmp_path / "o.json")
    assert [e.event_id for e in pkg.summary.events] == [r.event_id for r in recs[3:7]]
    assert pkg.summary.window_from == format_ts(start) and pkg.summary.window_to == format_ts(end)


def test_window_bounds_below_the_millisecond_are_exact(paths, tmp_path):
    rec = record(0, ts=T0)
    write_lines(paths.active_spool, [rec])
    export_window(paths, config(), tmp_path / "a.json", T0 + timedelta(microseconds=1), None)
    assert read_package(tmp_path / "a.json").summary.event_count == 0
    export_window(paths, config(), tmp_path / "b.json", None, T0 + timedelta(microseconds=1))
    assert read_package(tmp_path / "b.json").summary.event_count == 1


def test_other_iso_timestamps_are_normalized_and_non_times_skipped(paths, tmp_path):
    recs = [record(0, ts=T0), record(1, ts=T0), record(2, ts=T0)]
    recs[1].ts = "2026-11-28T01:00:05+00:00"
    recs[2].ts = "yesterday"
    write_lines(paths.active_spool, recs)
    result = export_window(paths, config(), tmp_path / "o.json", None, None)
    pkg = read_package(tmp_path / "o.json")
    assert [e.ts for e in pkg.summary.events] == [format_ts(T0), "2026-11-28T01:00:05.000Z"]
    assert result.skipped_lines == 1


def test_rotated_spool_files_and_the_extension_folder_are_all_read(paths, tmp_path):
    first = [record(i) for i in range(3)]
    write_lines(paths.active_spool, first)
    assert rotate_spool(paths.spool_dir) is not None
    second = [record(i) for i in range(3, 5)]
    write_lines(paths.active_spool, second)
    ext = [record(i, source="extension", category="feature") for i in range(5, 8)]
    write_lines(paths.extension_dir / "2026-11-28.jsonl", ext[:2])
    write_lines(paths.extension_dir / "2026-11-29.jsonl", ext[2:])
    (paths.extension_dir / "notes.txt").write_text("not a source")
    export_window(paths, config(), tmp_path / "o.json", None, None)
    pkg = read_package(tmp_path / "o.json")
    assert [e.event_id for e in pkg.summary.events] == [r.event_id for r in first + second + ext]
    assert pkg.usage_statistics.sources == {"cli": 5, "extension": 3}


def test_a_configured_extension_folder_replaces_the_default(paths, tmp_path):
    ext_dir = tmp_path / "vscode-storage"
    ext = [record(i, source="extension") for i in range(2)]
    write_lines(ext_dir / "events.jsonl", ext)
    write_lines(paths.extension_dir / "ignored.jsonl", [record(9)])
    cfg = config(**{"telemetry.sources.extension_dir": str(ext_dir)})
    export_window(paths, cfg, tmp_path / "o.json", None, None)
    assert [e.event_id for e in read_package(tmp_path / "o.json").summary.events] == [
        r.event_id for r in ext]


def test_an_empty_window_still_writes_a_valid_empty_package(paths, tmp_path):
    result = export_window(paths, config(), tmp_path / "o.json", None, None)
    pkg = read_package(tmp_path / "o.json")
    assert pkg.summary.event_count == 0 and pkg.summary.events == [] and result.events == 0
    assert pkg.performance_metrics == {} and pkg.errors == []


def test_files_are_private_and_recorded_with_their_sha256(paths, tmp_path):
    write_lines(paths.active_spool, [record(i) for i in range(3)])
    out = tmp_path / "o.json"
    result = export_window(paths, config(), out, None, None)
    for name in (out, Path(result.report_file)):
        assert stat.S_IMODE(os.stat(name).st_mode) == 0o600
    rec = find_export_record(paths.data_dir, out)
    import hashlib
    assert rec is not None and rec.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert rec.package_id == result.package_ids[0] and rec.events == 3
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_an_event_that_cannot_fit_even_alone_is_a_clear_error(tmp_path):
    header = make_header("00000000-0000-4000-8000-000000000000", None, None)
    small = record(0)
    huge = record(1, attrs={f"k{i}": "v" * 150 for i in range(60)})
    with pytest.raises(EventTooLargeError) as err:
        build_packages([small, huge], header=header, cap=3_000, output=tmp_path / "o.json")
    assert err.value.code == "event_too_large" and huge.event_id in err.value.message
    assert "max_upload_size_mb" in err.value.hint
    assert list(tmp_path.iterdir()) == []  # the part already written was removed again


def test_a_failure_mid_export_removes_the_parts_already_written(tmp_path):
    def events():
        for i in range(400):
            yield record(i, attrs={"pad": "z" * 100})
        raise OSError("disk went away")

    header = make_header("00000000-0000-4000-8000-000000000000", None, None)
    with pytest.raises(OSError):
        build_packages(events(), header=header, cap=20_000, output=tmp_path / "o.json")
    assert list(tmp_path.iterdir()) == []


def test_a_cap_too_small_for_any_package_is_a_usage_error(tmp_path):
    header = make_header("00000000-0000-4000-8000-000000000000", None, None)
    with pytest.raises(UsageError):
        build_packages([], header=header, cap=100, output=tmp_path / "o.json")


def test_output_in_a_missing_folder_is_a_storage_error_and_relative_is_usage(paths, tmp_path):
    with pytest.raises(StorageError) as err:
        export_window(paths, config(), tmp_path / "nope" / "o.json", None, None)
    assert err.value.hint
    with pytest.raises(UsageError):
        export_window(paths, config(), Path("o.json"), None, None)
    with pytest.raises(UsageError):
        export_window(paths, config(), tmp_path, None, None)


def test_progress_reports_every_ten_thousand_events_and_at_the_end(paths, tmp_path, monkeypatch):
    monkeypatch.setattr(package_builder, "PROGRESS_EVERY", 4)
    write_lines(paths.active_spool, [record(i) for i in range(10)])
    calls = []
    export_window(paths, config(), tmp_path / "o.json", None, None,
                  progress=lambda done, total: calls.append((done, total)))
    assert calls == [(4, None), (8, None), (10, 10)]


def test_error_type_is_kept_only_when_it_passes_the_privacy_rules(paths, tmp_path):
    recs = [
        record(0, status="error", error=ErrorInfo(code="BP-E1", type="ValueError", message="bad 1")),
        record(1, name="other", status="error",
               error=ErrorInfo(code="BP-E2", type="/home/alice/mod.py", message="x")),
    ]
    write_lines(paths.active_spool, recs)
    export_window(paths, config(), tmp_path / "o.json", None, None)
    pkg = read_package(tmp_path / "o.json")
    types = {s.error_code: s.error_type for s in pkg.errors}
    assert types == {"BP-E1": "ValueError", "BP-E2": None}
    assert b"alice" not in (tmp_path / "o.json").read_bytes()


def test_a_rotation_after_the_sources_are_opened_loses_and_duplicates_nothing(paths, tmp_path):
    from branchpy_telemetry.daemon.spool_reader import ReadStats, open_sources, read_records

    recs = [record(i) for i in range(4)]
    write_lines(paths.active_spool, recs)
    sources = open_sources(paths, config())
    assert rotate_spool(paths.spool_dir) is not None
    got = [r.event_id for r in read_records(sources, ReadStats())]
    assert got == [r.event_id for r in recs]


def test_lines_cut_by_chunk_boundaries_are_reassembled(paths, tmp_path, monkeypatch):
    from branchpy_telemetry.daemon import spool_reader

    monkeypatch.setattr(spool_reader, "CHUNK_BYTES", 7)
    recs = [record(i) for i in range(20)]
    write_lines(paths.active_spool, recs, extra=b"{\"partial")
    result = export_window(paths, config(), tmp_path / "o.json", None, None)
    assert [e.event_id for e in read_package(tmp_path / "o.json").summary.events] == [
        r.event_id for r in recs]
    assert result.skipped_lines == 1


def test_a_line_longer_than_the_limit_is_skipped_and_counted(paths, tmp_path, monkeypatch):
    from branchpy_telemetry.daemon import spool_reader

    monkeypatch.setattr(spool_reader, "CHUNK_BYTES", 64)
    monkeypatch.setattr(spool_reader, "MAX_LINE_BYTES", 256)
    before, after = record(0), record(1)
    write_lines(paths.active_spool, [before], extra=b'{"v": 1, "junk": "' + b"j" * 2000 + b'"}\n')
    write_lines(paths.active_spool, [after])
    result = export_window(paths, config(), tmp_path / "o.json", None, None)
    assert [e.event_id for e in read_package(tmp_path / "o.json").summary.events] == [
        before.event_id, after.event_id]
    assert result.skipped_lines == 1


def test_the_garbage_collector_is_resumed_after_an_export_even_a_failed_one(paths, tmp_path):
    import gc

    write_lines(paths.active_spool, [record(i) for i in range(3)])
    assert gc.isenabled()
    export_window(paths, config(), tmp_path / "o.json", None, None)
    assert gc.isenabled()
    with pytest.raises(StorageError):
        export_window(paths, config(), tmp_path / "missing" / "o.json", None, None)
    assert gc.isenabled()
    header = make_header("00000000-0000-4000-8000-000000000000", None, None)

    def failing():
        yield record(0)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        build_packages(failing(), header=header, cap=100_000, output=tmp_path / "f.json")
    assert gc.isenabled()
    gc.disable()
    try:
        export_window(paths, config(), tmp_path / "p.json", None, None)
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


def test_a_new_export_to_the_same_name_removes_what_the_last_one_left_and_nothing_else(paths, tmp_path):
    write_lines(paths.active_spool, [record(i, attrs={"pad": "p" * 100}) for i in range(300)])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "pkg.json"
    small = config(**{"telemetry.max_upload_size_mb": 0.03})
    split = export_window(paths, small, out, None, None)
    assert len(split.files) >= 3
    mine = out_dir / "pkg.part777.json"  # the user's own file: not in our exports record
    mine.write_text("{}")
    single = export_window(paths, config(), out, None, None)
    assert single.files == [str(out)]
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "pkg.json", "pkg.part777.json", "pkg.redactions.json"]
    again = export_window(paths, small, out, None, None)
    assert not out.exists() and all(Path(f).exists() for f in again.files) and mine.exists()


def test_extension_files_are_opened_one_at_a_time_and_a_file_reached_twice_is_read_once(paths, tmp_path):
    from branchpy_telemetry.daemon.spool_reader import ReadStats, open_sources, read_records

    spool = [record(i) for i in range(3)]
    write_lines(paths.active_spool, spool)
    ext = [record(100 + i, source="extension") for i in range(300)]
    for i, rec in enumerate(ext):
        write_lines(paths.extension_dir / f"day-{i:04d}.jsonl", [rec])
    fds_before = len(os.listdir("/proc/self/fd"))
    sources = open_sources(paths, config())
    assert len(os.listdir("/proc/self/fd")) - fds_before < 10
    got = [r.event_id for r in read_records(sources, ReadStats())]
    assert got == [r.event_id for r in spool + ext]
    # the extension folder configured as the spool folder: nothing is read twice
    cfg = config(**{"telemetry.sources.extension_dir": str(paths.spool_dir)})
    export_window(paths, cfg, tmp_path / "o.json", None, None)
    assert [e.event_id for e in read_package(tmp_path / "o.json").summary.events] == [
        r.event_id for r in spool]


def test_a_failed_export_leaves_the_previous_export_to_the_same_name_untouched(tmp_path):
    header = make_header("00000000-0000-4000-8000-000000000000", None, None)
    out = tmp_path / "o.json"
    first = build_packages([record(i, attrs={"pad": "z" * 100}) for i in range(400)], header=header,
                           cap=20_000, output=out)
    before = {Path(p).name: Path(p).read_bytes() for p, *_ in first.written}
    assert len(before) > 2

    def events():
        for i in range(400):
            yield record(i, attrs={"pad": "q" * 100})
        raise OSError("disk went away")

    with pytest.raises(OSError):
        build_packages(events(), header=header, cap=20_000, output=out)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("o.part")}
    assert after == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
