"""The auto-mode daily upload budget (`telemetry.auto.daily_upload_budget_mb`).

Computed from the ledger for the current UTC day: bytes of every non-dry-run
record (delivered or duplicate: both went over the wire). No extra state to
keep in sync, so a restart cannot reset the budget.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from branchpy_telemetry.client.contracts.config import Config
from branchpy_telemetry.client.contracts.timewindow import parse_time
from branchpy_telemetry.daemon.delivery.ledger import read_history

MB = 1024 * 1024


class DailyUploadBudget:
    def __init__(self, ledger_file: Path, budget_bytes: int):
        self.ledger_file = Path(ledger_file)
        self.budget_bytes = int(budget_bytes)

    @classmethod
    def from_config(cls, ledger_file: Path, config: Config) -> DailyUploadBudget:
        return cls(ledger_file, int(config.telemetry.auto.daily_upload_budget_mb * MB))

    def used_today(self, now: datetime) -> int:
        day_start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        used = 0
        for record in read_history(self.ledger_file):  # newest first: stop at yesterday
            try:
                when = parse_time(record.when)
            except Exception:
                continue
            if when < day_start:
                break
            if not record.dry_run and record.outcome in ("delivered", "duplicate"):
                used += record.bytes
        return used

    def remaining(self, now: datetime) -> int:
        return max(0, self.budget_bytes - self.used_today(now))

    def budget_allows(self, nbytes: int, now: datetime) -> bool:
        return self.used_today(now) + nbytes <= self.budget_bytes
