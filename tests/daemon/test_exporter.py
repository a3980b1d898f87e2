"""The exporter: windows, sources, skipped lines, size-capped parts, files written."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from branchpy_telemetry.client.contracts.catalog import load_catalog, parse_catalog
from branchpy_telemetry.client.contracts.config import load_config
from branchpy_telemetry.client.contracts.declared import ExportPolicy
from branchpy_telemetry.client.contracts.errors import EventTooLargeError, StorageError, UsageError
from branchpy_telemetry.client.contracts.event import ErrorInfo, EventRecord
from branchpy_telemetry.client.contracts.schema import decode_package
from branchpy_telemetry.client.contracts.timewindow import format_ts
from branchpy_telemetry.client.emitter.spool import rotate_spool
from branchpy_telemetry.client.emitter.stamping import new_event_id
from branchpy_telemetry.client.infra.atomic_write import is_temp_file
from branchpy_telemetry.daemon.counters import CounterStore
from branchpy_telemetry.daemon.export import package_builder
from branchpy_telemetry.daemon.export.exporter import export_window
from branchpy_telemetry.daemon.export.package_builder import build_packages
from branchpy_telemetry.daemon.export.package_records import find_export_record
from branchpy_telemetry.daemon.export.package_writer import make_header
from branchpy_telemetry.daemon.export.spool_reader import RecordBlocks

T0 = datetime(2026, 11, 28, 1, 0, 0, tzinfo=UTC)
# events the bundled catalog declares, all three with the attrs `files_scanned` and `flag_json`
NAMES = ("analyze", "lint", "check")
SESSION = "b3aa7efe4458a885ab9099a435a240ae"
CORRELATIONS = ("0192f0e4-1a2b-7c3d-8e4f-0123456789ab", "6f1c2d3e4a5b46c7a8d9e0f1a2b3c4d5")
GOVERNANCE_ID = "00000000-0000-4000-8000-000000000000"
_enc = msgspec.json.Encoder()


def record(i: int, *, ts: datetime | None = None, **over) -> EventRecord:
    fields = dict(event_id=new_event_id(), ts=format_ts(ts or T0 + timedelta(seconds=i)),
                  category="command", source="cli", name=NAMES[i % 3], duration_ms=float(i),
                  status="ok", session_id=SESSION, correlation_id=CORRELATIONS[i % 2],
                  attrs={"files_scanned": i, "flag_json": True})
    fields.update(over)
    return EventRecord(**fields)


def full_analyze(i: int, **attrs) -> EventRecord:
    """An `analyze` event with every attr the catalog declares for it (about 400 bytes sanitized)."""
    declared = {"files": i, "files_scanned": i, "mode": "incremental", "flag_json": True,
                "engine": "renpy-8.2.1", "cached": False, "workers": 8, "findings": i}
    declared.update(attrs)
    return record(i, name="analyze", attrs=declared)


def export_policy(catalog=None) -> ExportPolicy:
    return ExportPolicy(catalog=catalog or load_catalog(), today=T0.date(), id_key=b"k" * 32)


def wide_catalog(attrs: int):
    """A test catalog whose one event (command/wide) declares `attrs` text attrs of up to 150
    characters: the only way to make one declared event larger than a small package cap."""
    lines = [f'k{i} = {{ type = "pattern", regex = "^v{{1,150}}$" }}' for i in range(attrs)]
    return parse_catalog(('format = 1\nid = "t"\nrevision = "1"\n[[event]]\ncategory = "command"\n'
                          'name = "wide"\ndescription = "d"\nexpires = "never"\nowner = "o"\n'
                          '[event.attrs]\n' + "\n".join(lines) + "\n").encode())


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
    write_lines(paths.active_spool, [full_analyze(i) for i in range(600)])
    export_window(paths, config(), tmp_path / "one.json", None, None)
    split = export_window(paths, config(**{"telemetry.max_upload_size_mb": 0.05}), tmp_path / "two.json",
                          None, None)
    counters = CounterStore(paths.counters_file).snapshot()
    assert counters["exported.events"] == 1200 and counters["exported.packages"] == 1 + len(split.files)


def test_a_large_window_is_split_into_complete_parts_each_within_the_cap(paths, tmp_path):
    recs = [full_analyze(i) for i in range(600)]
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
    """`engine` is a declared text attr: a path in it is dropped by the privacy rules and
    reported at that attr, in the part the event went to."""
    recs = [full_analyze(i, engine=f"/home/alice/game/s{i}.rpy") for i in range(300)]
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
        assert f["pointer"] == f"/summary/events/{index}/attrs/engine"
        event = pkg["summary"]["events"][index]
        assert "engine" not in event["attrs"] and event["attrs"]["files_scanned"] == event["attrs"]["files"]
        assert event["event_id"] == recs[event["attrs"]["files"]].event_id
    for name in result.files:
        assert by_file[Path(name).name] == len(read_package(Path(name)).summary.events)
    assert b"alice" not in Path(result.report_file).read_bytes()
    assert not [f for f in result.files if b"alice" in Path(f).read_bytes()]


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
    huge = [record(10 + i, name="analyze", duration_ms=8.98846567431158e307) for i in range(2)]
    write_lines(paths.active_spool, [good[0], *huge, record(20, duration_ms=-5.0), *good[1:]])
    result = export_window(paths, config(), tmp_path / "o.json", None, None)
    pkg = read_package(tmp_path / "o.json")
    assert [e.event_id for e in pkg.summary.events] == [r.event_id for r in good]
    assert result.skipped_lines == 3 == pkg.summary.skipped_lines
    assert pkg.performance_metrics["analyze"].total_ms == 0.0


def test_a_full_disk_is_a_storage_error_that_leaves_no_file_and_loses_no_event(paths, tmp_path, tiny_tmpfs):
    recs = [full_analyze(i, engine=f"/home/alice/s{i}.rpy") for i in range(400)]
    write_lines(paths.active_spool, recs)  # ~140 KB of package: more than the 16 KiB disk
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
    ext = [record(i, source="extension", category="feature", name="graph.open",
                  attrs={"nodes": i, "panel": "graph"}) for i in range(5, 8)]
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
    rec = find_export_record(paths.exports_file, out)
    import hashlib
    assert rec is not None and rec.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert rec.package_id == result.package_ids[0] and rec.events == 3
    assert not [p for p in tmp_path.iterdir() if is_temp_file(p)]


def test_an_event_that_cannot_fit_even_alone_is_a_clear_error(tmp_path):
    header = make_header(GOVERNANCE_ID, None, None)
    small = record(0, name="wide", attrs={"k0": "v"})
    huge = record(1, name="wide", attrs={f"k{i}": "v" * 150 for i in range(60)})
    with pytest.raises(EventTooLargeError) as err:
        build_packages([small, huge], header=header, cap=3_000, output=tmp_path / "o.json",
                       policy=export_policy(wide_catalog(60)))
    assert err.value.code == "event_too_large" and huge.event_id in err.value.message
    assert "max_upload_size_mb" in err.value.hint
    assert list(tmp_path.iterdir()) == []  # the part already written was removed again


def test_a_failure_mid_export_removes_the_parts_already_written(tmp_path):
    def events():
        for i in range(400):
            yield full_analyze(i)
        raise OSError("disk went away")

    header = make_header(GOVERNANCE_ID, None, None)
    with pytest.raises(OSError):
        build_packages(events(), header=header, cap=20_000, output=tmp_path / "o.json",
                       policy=export_policy())
    assert list(tmp_path.iterdir()) == []


def test_a_cap_too_small_for_any_package_is_a_usage_error(tmp_path):
    header = make_header(GOVERNANCE_ID, None, None)
    with pytest.raises(UsageError):
        build_packages([], header=header, cap=100, output=tmp_path / "o.json", policy=export_policy())


def test_output_in_a_missing_folder_is_a_storage_error_and_relative_is_usage(paths, tmp_path):
    with pytest.raises(StorageError) as err:
        export_window(paths, config(), tmp_path / "nope" / "o.json", None, None)
    assert err.value.hint
    with pytest.raises(UsageError):
        export_window(paths, config(), Path("o.json"), None, None)
    with pytest.raises(UsageError):
        export_window(paths, config(), tmp_path, None, None)


def test_progress_is_reported_at_the_first_block_boundary_past_each_step_and_at_the_end(tmp_path,
                                                                                       monkeypatch):
    """The exporter works a block of records at a time: progress comes at the end of the first
    block that takes the count past each PROGRESS_EVERY records (once, however many steps the
    block crosses), and once more at the end with the total."""
    monkeypatch.setattr(package_builder, "PROGRESS_EVERY", 4)
    recs = [record(i) for i in range(30)]
    header = make_header(GOVERNANCE_ID, None, None)

    def progress_of(blocks: list[list[EventRecord]], name: str) -> list[tuple[int, int | None]]:
        calls: list[tuple[int, int | None]] = []
        build_packages(RecordBlocks(blocks), header=header, cap=1_000_000, output=tmp_path / name,
                       policy=export_policy(), progress=lambda done, total: calls.append((done, total)))
        return calls

    assert progress_of([recs[0:3], recs[3:6], recs[6:9], recs[9:10]], "a.json") == [
        (6, None), (9, None), (10, 10)]
    assert progress_of([recs[0:3], recs[3:28], recs[28:30]], "b.json") == [(28, None), (30, 30)]
    assert progress_of([recs[0:3]], "c.json") == [(3, 3)]


def test_an_export_reports_progress_at_the_end_with_the_total(paths, tmp_path):
    write_lines(paths.active_spool, [record(i) for i in range(10)])
    calls = []
    export_window(paths, config(), tmp_path / "o.json", None, None,
                  progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (10, 10) and all(total is None for _, total in calls[:-1])


def test_error_code_and_type_leave_only_when_declared_and_public(paths, tmp_path):
    """The code only when it matches the catalog's code_pattern; the type only when it is a
    built-in, standard-library or catalog-named exception (a user's module is a file name)."""
    def failed(i: int, code: str, etype: str) -> EventRecord:
        return record(i, status="error", error=ErrorInfo(code=code, type=etype, message=f"failed {i}"))

    recs = [
        failed(0, "BP-E0001", "ValueError"),
        failed(1, "BP-E0002", "/home/alice/mod.py"),
        failed(2, "BP-E0003", "thesis_draft.ParseError"),
        failed(3, "BP-E0004", "json.decoder.JSONDecodeError"),
        failed(4, "alice-laptop", "KeyError"),
    ]
    write_lines(paths.active_spool, recs)
    result = export_window(paths, config(), tmp_path / "o.json", None, None)
    pkg = read_package(tmp_path / "o.json")
    types = {s.error_code: s.error_type for s in pkg.errors}
    assert types == {"BP-E0001": "ValueError", "BP-E0002": None, "BP-E0003": None,
                     "BP-E0004": "json.decoder.JSONDecodeError", None: "KeyError"}
    assert [e.error_code for e in pkg.summary.events] == [
        "BP-E0001", "BP-E0002", "BP-E0003", "BP-E0004", None]
    assert all(e.error_hash is not None for e in pkg.summary.events)
    assert result.redactions == {"invalid_value": 1}
    for written in (tmp_path / "o.json", tmp_path / "o.redactions.json"):
        data = written.read_bytes()
        assert b"alice" not in data and b"thesis_draft" not in data and b"failed" not in data


@pytest.mark.parametrize("session_id", [SESSION, "alice-laptop"], ids=["block-proof", "record-proof"])
def test_a_list_or_object_as_a_declared_attr_value_is_invalid_not_a_crash(paths, tmp_path, session_id):
    """A spool line is JSON from any writer (the extension): a list or an object where the
    catalog declares an enum, int, bool, float, version or pattern is dropped and counted, in
    the per-block proof and in the per-record one (taken when a block holds an id to replace)."""
    odd = [["fast"], {"mode": "fast"}, []]
    recs = [record(i, session_id=session_id, name="analyze",
                   attrs={"mode": value, "files": value, "flag_json": value, "engine": value,
                          "files_scanned": i})
            for i, value in enumerate(odd)]
    recs += [record(3, session_id=session_id, category="feature", name="flow.zoom", attrs={"level": [1.5]}),
             record(4, session_id=session_id, category="command", name="doctor",
                    attrs={"engine_version": {"v": "1.2.3"}, "python_ok": True})]
    write_lines(paths.active_spool, recs)
    result = export_window(paths, config(), tmp_path / "o.json", None, None)
    pkg = read_package(tmp_path / "o.json")
    assert [e.attrs for e in pkg.summary.events] == [{"files_scanned": 0}, {"files_scanned": 1},
                                                     {"files_scanned": 2}, {}, {"python_ok": True}]
    keyed = {"keyed_id": 5} if session_id != SESSION else {}
    assert result.redactions == {"invalid_value": 4 * 3 + 2, **keyed}


def test_a_rotation_after_the_sources_are_opened_loses_and_duplicates_nothing(paths, tmp_path):
    from branchpy_telemetry.daemon.export.spool_reader import ReadStats, open_sources, read_records

    recs = [record(i) for i in range(4)]
    write_lines(paths.active_spool, recs)
    sources = open_sources(paths, config())
    assert rotate_spool(paths.spool_dir) is not None
    got = [r.event_id for r in read_records(sources, ReadStats())]
    assert got == [r.event_id for r in recs]


def test_lines_cut_by_chunk_boundaries_are_reassembled(paths, tmp_path, monkeypatch):
    from branchpy_telemetry.daemon.export import spool_reader

    monkeypatch.setattr(spool_reader, "CHUNK_BYTES", 7)
    recs = [record(i) for i in range(20)]
    write_lines(paths.active_spool, recs, extra=b"{\"partial")
    result = export_window(paths, config(), tmp_path / "o.json", None, None)
    assert [e.event_id for e in read_package(tmp_path / "o.json").summary.events] == [
        r.event_id for r in recs]
    assert result.skipped_lines == 1


def test_a_line_longer_than_the_limit_is_skipped_and_counted(paths, tmp_path, monkeypatch):
    from branchpy_telemetry.daemon.export import spool_reader

    monkeypatch.setattr(spool_reader, "CHUNK_BYTES", 64)
    monkeypatch.setattr(spool_reader, "MAX_LINE_BYTES", 512)
    before, after = record(0), record(1)
    assert len(_enc.encode(before)) < 512 - 1 < 2000
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
    header = make_header(GOVERNANCE_ID, None, None)

    def failing():
        yield record(0)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        build_packages(failing(), header=header, cap=100_000, output=tmp_path / "f.json",
                       policy=export_policy())
    assert gc.isenabled()
    gc.disable()
    try:
        export_window(paths, config(), tmp_path / "p.json", None, None)
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


def test_a_new_export_to_the_same_name_removes_what_the_last_one_left_and_nothing_else(paths, tmp_path):
    write_lines(paths.active_spool, [full_analyze(i) for i in range(300)])
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
    from branchpy_telemetry.daemon.export.spool_reader import ReadStats, open_sources, read_records

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
    header = make_header(GOVERNANCE_ID, None, None)
    out = tmp_path / "o.json"
    first = build_packages([full_analyze(i) for i in range(400)], header=header, cap=20_000, output=out,
                           policy=export_policy())
    before = {Path(p).name: Path(p).read_bytes() for p, *_ in first.written}
    assert len(before) > 2

    def events():
        for i in range(400):
            yield full_analyze(i, mode="fast")
        raise OSError("disk went away")

    with pytest.raises(OSError):
        build_packages(events(), header=header, cap=20_000, output=out, policy=export_policy())
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("o.part")}
    assert after == before
    assert not [p for p in tmp_path.iterdir() if is_temp_file(p)]
