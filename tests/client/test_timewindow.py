from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from branchpy_telemetry.client.contracts.errors import UsageError
from branchpy_telemetry.client.contracts.timewindow import format_ts, parse_duration, parse_window_start

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "seconds"), [("10s", 10), ("30m", 1800), ("24h", 86400),
                                               ("7d", 604800), ("1.5h", 5400), ("250ms", 0.25)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "h", "10", "ten minutes", "-5m", "5y"])
def test_bad_duration_is_usage_error_with_hint(text):
    with pytest.raises(UsageError) as err:
        parse_duration(text)
    assert "30m" in err.value.hint


def test_window_start_from_duration_or_iso():
    assert parse_window_start("30m", NOW) == NOW - timedelta(minutes=30)
    assert parse_window_start("2026-11-27T00:00:00Z", NOW) == datetime(2026, 11, 27, tzinfo=UTC)
    assert parse_window_start("2026-11-27T01:00:00+01:00", NOW) == datetime(2026, 11, 27, tzinfo=UTC)
    assert parse_window_start("2026-11-27", NOW) == datetime(2026, 11, 27, tzinfo=UTC)
    with pytest.raises(UsageError):
        parse_window_start("yesterday", NOW)


def test_format_ts_is_utc_millis_z():
    value = datetime(2026, 11, 28, 1, 2, 3, 456789, tzinfo=UTC)
    assert format_ts(value) == "2026-11-28T01:02:03.456Z"
