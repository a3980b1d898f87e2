"""URL scheme -> sink class: one explicit dict, read right here (`serve --db URL`).

    open_sink("sqlite:///.branchpy/telemetry/events.db")   # relative to the CWD
    open_sink("sqlite:////var/lib/branchpy/events.db")     # absolute
    open_sink("mysql://user:pass@host:3306/telemetry")
    open_sink("memory://")                                 # tests
    open_sinks([primary_url, secondary_url, ...], backlog_path=…)  # CompositeSink when several
"""

from __future__ import annotations

import os
from collections.abc import Callable
from urllib.parse import urlsplit

import structlog

from branchpy_telemetry.backend.sinks.base import Sink, SinkError

log = structlog.get_logger("backend.sinks")

DEFAULT_DB_URL = "sqlite:///.branchpy/telemetry/events.db"
ENV_DB_URL = "BRANCHPY_TELEMETRY_BACKEND_DB"


class SinkUrlError(SinkError):
    """A --db URL we cannot use (unknown scheme, missing database name)."""

    code = "bad_sink_url"


def _open_memory(url: str) -> Sink:
    from branchpy_telemetry.backend.sinks.memory import MemorySink

    return MemorySink()


def _open_sqlite(url: str) -> Sink:
    from branchpy_telemetry.backend.sinks.sqlite import LocalSQLiteSink

    return LocalSQLiteSink.from_url(url)


def _open_mysql(url: str) -> Sink:
    from branchpy_telemetry.backend.sinks.mysql import MySQLTelemetrySink

    return MySQLTelemetrySink.from_url(url)


# Imports are deferred so that `memory://` and `sqlite://` work without PyMySQL installed.
SINK_SCHEMES: dict[str, Callable[[str], Sink]] = {
    "memory": _open_memory,
    "sqlite": _open_sqlite,
    "mysql": _open_mysql,
    "mysql+pymysql": _open_mysql,
}


def default_db_url() -> str:
    """BRANCHPY_TELEMETRY_BACKEND_DB, else the SQLite file under the working directory."""
    return os.environ.get(ENV_DB_URL) or DEFAULT_DB_URL


def open_sink(url: str) -> Sink:
    scheme = urlsplit(url).scheme.lower()
    opener = SINK_SCHEMES.get(scheme)
    if opener is None:
        raise SinkUrlError(f"unknown sink URL scheme {scheme!r} in {redact_url(url)!r}; "
                           f"use one of: {', '.join(sorted(SINK_SCHEMES))}")
    return opener(url)


def open_sinks(urls: list[str] | None, *, backlog_path: str | None = None) -> Sink:
    """One sink per URL; several make a CompositeSink whose first member is primary, keeping
    what its secondaries have yet to receive in `backlog_path` (None: in memory only).
    An empty list means the default URL."""
    urls = list(urls or [default_db_url()])
    sinks: list[Sink] = []
    failures: dict[int, str] = {}
    try:
        for i, url in enumerate(urls):
            try:
                sinks.append(open_sink(url))
            except SinkUrlError:
                raise
            except SinkError as exc:
                if i == 0 or urlsplit(url).scheme.lower() not in ("mysql", "mysql+pymysql"):
                    raise
                # a secondary server down at start: serve anyway, connect and migrate on first use
                from branchpy_telemetry.backend.sinks.mysql import MySQLTelemetrySink

                log.warning("sink.secondary_unavailable_at_start", url=redact_url(url), error=str(exc))
                sinks.append(MySQLTelemetrySink.from_url(url, migrate="lazy"))
                failures[i] = f"unavailable at start: {exc}"
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    if len(sinks) == 1:
        return sinks[0]
    from branchpy_telemetry.backend.sinks.composite import CompositeSink
    from branchpy_telemetry.backend.sinks.composite_backlog import SecondaryBacklog

    try:
        backlog = SecondaryBacklog(backlog_path) if backlog_path else None
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return CompositeSink(sinks, failures=failures, backlog=backlog)


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, for logs and health details."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
