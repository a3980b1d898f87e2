"""Small pieces of CLI output: progress line, value formatting, --attr parsing."""

from __future__ import annotations

import io

import pytest

from branchpy_telemetry.client.contracts.errors import UsageError
from branchpy_telemetry.client.contracts.protocol import Progress
from branchpy_telemetry.client.thin.cli.emit import parse_attr
from branchpy_telemetry.client.thin.cli.progress import TerminalProgress
from branchpy_telemetry.client.thin.cli.render import format_bytes, format_duration, format_value


def test_progress_rewrites_one_line_and_clears_it_when_done():
    stream = io.StringIO()
    display = TerminalProgress("exporting", stream)
    display(Progress(id="r", cmd="export", stage="export", done=50, total=200))
    display(Progress(id="r", cmd="export", stage="export", done=1200, total=None))
    display.finish()
    text = stream.getvalue()
    assert "exporting: 50/200 (25%)" in text and "exporting: 1,200" in text
    assert "\n" not in text and text.endswith("\r\x1b[K")


def test_progress_is_off_when_stderr_is_not_a_terminal():
    assert TerminalProgress.maybe("exporting", enabled=True) is None  # pytest captures stderr
    assert TerminalProgress.maybe("exporting", enabled=False) is None


def test_finish_without_progress_writes_nothing():
    stream = io.StringIO()
    TerminalProgress("x", stream).finish()
    assert stream.getvalue() == ""


@pytest.mark.parametrize("value,text", [
    (None, "(unset)"), (True, "true"), (5.0, "5"), (2.5, "2.5"), ("6h", "6h"),
])
def test_format_value(value, text):
    assert format_value(value) == text


def test_format_bytes_and_duration():
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(5 * 1024 * 1024) == "5.0 MiB"
    assert format_duration(3725) == "1h 2m 5s"
    assert format_duration(42) == "42s"


@pytest.mark.parametrize("text,pair", [
    ("files=120", ("files", 120)),
    ("ratio=0.5", ("ratio", 0.5)),
    ("flag=true", ("flag", True)),
    ("version=1.2.3", ("version", "1.2.3")),
    ("label=hello world", ("label", "hello world")),
    ("obj={\"a\": 1}", ("obj", "{\"a\": 1}")),
    ("empty=", ("empty", "")),
])
def test_parse_attr_types_numbers_and_booleans_only(text, pair):
    assert parse_attr(text) == pair


@pytest.mark.parametrize("text", ["novalue", "=5", " =x"])
def test_parse_attr_rejects_missing_key_or_equals(text):
    with pytest.raises(UsageError):
        parse_attr(text)
