"""The receipts ledger (append-only, newest first, torn-line tolerant) and the daily budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from branchpy_telemetry.client.contracts.timewindow import format_ts
from branchpy_telemetry.daemon.delivery.budget import DailyUploadBudget
from branchpy_telemetry.daemon.delivery.ledger import LedgerRecord, append_receipt, read_history

NOW = datetime(2026, 11, 28, 3, 0, 0, tzinfo=UTC)


def record(n: int, *, when: datetime = NOW, nbytes: int = 100, dry_run: bool = False,
           outcome: str = "delivered") -> LedgerRecord:
    return LedgerRecord(when=format_ts(when), package_id=f"pkg-{n}", events=n, bytes=nbytes,
                        endpoint="http://127.0.0.1:8787/api/telemetry", receipt=f"sha256:{n:04x}",
                        outcome=outcome, attempts=1, dry_run=dry_run, status_code=201)


def test_history_is_newest_first_and_limited(paths):
    for n in range(5):
        append_receipt(paths.ledger_file, record(n))
    assert [r.package_id for r in read_history(paths.ledger_file)] == [f"pkg-{n}" for n in (4, 3, 2, 1, 0)]
    assert [r.package_id for r in read_history(paths.ledger_file, limit=2)] == ["pkg-4", "pkg-3"]


def test_history_of_a_missing_ledger_is_empty(paths):
    assert read_history(paths.ledger_file) == []


def test_records_round_trip_every_field(paths):
    original = record(7, dry_run=True, outcome="dry_run")
    append_receipt(paths.ledger_file, original)
    assert read_history(paths.ledger_file) == [original]


def test_a_torn_last_line_is_skipped_and_never_glued_to_the_next_record(paths):
    append_receipt(paths.ledger_file, record(1))
    with paths.ledger_file.open("ab") as fh:
        fh.write(b'{"when": "2026-11-28T03:00:00.000Z", "package_id": "torn", "ev')  # crash mid-append
    assert [r.package_id for r in read_history(paths.ledger_file)] == ["pkg-1"]
    append_receipt(paths.ledger_file, record(2))
    assert [r.package_id for r in read_history(paths.ledger_file)] == ["pkg-2", "pkg-1"]


def test_ledger_is_append_only(paths):
    append_receipt(paths.ledger_file, record(1))
    before = paths.ledger_file.read_bytes()
    append_receipt(paths.ledger_file, record(2))
    assert paths.ledger_file.read_bytes().startswith(before)


def test_budget_counts_only_todays_real_uploads(paths):
    yesterday = NOW - timedelta(hours=4)  # 23:00 the day before
    append_receipt(paths.ledger_file, record(1, when=yesterday, nbytes=900))
    append_receipt(paths.ledger_file, record(2, when=NOW - timedelta(minutes=30), nbytes=300))
    append_receipt(paths.ledger_file, record(3, when=NOW, nbytes=5000, dry_run=True, outcome="dry_run"))
    append_receipt(paths.ledger_file, record(4, when=NOW, nbytes=200, outcome="duplicate"))
    budget = DailyUploadBudget(paths.ledger_file, 1000)
    assert budget.used_today(NOW) == 500
    assert budget.remaining(NOW) == 500
    assert budget.budget_allows(500, NOW) and not budget.budget_allows(501, NOW)


def test_budget_resets_at_utc_midnight(paths):
    append_receipt(paths.ledger_file, record(1, when=NOW, nbytes=1000))
    budget = DailyUploadBudget(paths.ledger_file, 1000)
    assert not budget.budget_allows(1, NOW)
    tomorrow = NOW.replace(hour=0) + timedelta(days=1)
    assert budget.budget_allows(1000, tomorrow)


def test_budget_from_config_uses_daily_upload_budget_mb(paths):
    from branchpy_telemetry.client.contracts.config import load_config

    config = load_config(None, env={}, overrides={"telemetry.auto.daily_upload_budget_mb": 2})
    assert DailyUploadBudget.from_config(paths.ledger_file, config).budget_bytes == 2 * 1024 * 1024
