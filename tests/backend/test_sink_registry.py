"""URL -> sink: the explicit scheme registry, the default URL, and bad URLs."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest

from branchpy_telemetry.backend.sinks.base import SinkError
from branchpy_telemetry.backend.sinks.composite import CompositeSink
from branchpy_telemetry.backend.sinks.memory import MemorySink
from branchpy_telemetry.backend.sinks.mysql import MySQLTelemetrySink
from branchpy_telemetry.backend.sinks.registry import (
    DEFAULT_DB_URL,
    ENV_DB_URL,
    SinkUrlError,
    default_db_url,
    open_sink,
    open_sinks,
    redact_url,
)
from branchpy_telemetry.backend.sinks.sqlite import LocalSQLiteSink

from .conftest import make_package


def test_each_scheme_opens_its_sink(tmp_path, mysql_url):
    sinks = [open_sink("memory://"), open_sink(f"sqlite:///{tmp_path}/e.db"), open_sink(mysql_url)]
    try:
        assert [type(s) for s in sinks] == [MemorySink, LocalSQLiteSink, MySQLTelemetrySink]
    finally:
        for s in sinks:
            s.close()


def test_an_unknown_scheme_is_a_clear_error():
    with pytest.raises(SinkUrlError, match="unknown sink URL scheme 'postgres'.*memory, mysql") as info:
        open_sink("postgres://u:secret@h/db")
    assert info.value.code == "bad_sink_url"
    assert "secret" not in str(info.value)


def test_several_urls_make_a_composite_whose_first_is_primary(tmp_path):
    sink = open_sinks([f"sqlite:///{tmp_path}/p.db", "memory://"])
    try:
        assert isinstance(sink, CompositeSink)
        assert isinstance(sink.primary, LocalSQLiteSink)
        assert list(sink.member_health()) == ["primary:sqlite", "secondary1:memory"]
    finally:
        sink.close()


def test_the_default_is_the_sqlite_file_under_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_DB_URL, raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_db_url() == DEFAULT_DB_URL == "sqlite:///.branchpy/telemetry/events.db"
    open_sinks([]).close()
    assert (tmp_path / ".branchpy" / "telemetry" / "events.db").is_file()


def test_the_environment_overrides_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_DB_URL, f"sqlite:///{tmp_path}/env.db")
    open_sinks(None).close()
    assert (tmp_path / "env.db").is_file()


def test_a_bad_url_among_several_fails_the_whole_open(tmp_path):
    with pytest.raises(SinkUrlError):
        open_sinks([f"sqlite:///{tmp_path}/p.db", "nope://x"])


@pytest.mark.parametrize("url", ["mysql://u:pw@h:notaport/db", "mysql://u@h:3306/db?pool_size=many",
                                 "mysql://u@h:3306/"])
def test_a_malformed_mysql_url_is_a_clear_sink_error(url):
    with pytest.raises(SinkError, match="MySQL URL|names no database") as info:
        open_sink(url)
    assert "pw" not in str(info.value)


def test_passwords_are_redacted_for_logs():
    assert redact_url("mysql://bp:s3cret@db:3306/t") == "mysql://bp:***@db:3306/t"
    assert redact_url("sqlite:///x.db") == "sqlite:///x.db"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_mysql_secondary_down_at_start_does_not_stop_the_composite(tmp_path):
    down = f"mysql://root@127.0.0.1:{_closed_port()}/bp?connect_timeout=1"
    sink = open_sinks([f"sqlite:///{tmp_path}/p.db", down])
    try:
        result = sink.store_package(make_package(5), receipt="sha256:r", body_bytes=1,
                                    received_at=datetime(2026, 11, 28, tzinfo=UTC))
        assert result.accepted_events == 5
        secondary = sink.member_health()["secondary1:mysql"]
        assert secondary.ok is False and "Can't connect" in secondary.detail
        assert sink.health().ok is True
    finally:
        sink.close()


def test_a_primary_down_at_start_is_an_error():
    with pytest.raises(SinkError, match="Can't connect"):
        open_sinks([f"mysql://root@127.0.0.1:{_closed_port()}/bp?connect_timeout=1", "memory://"])
