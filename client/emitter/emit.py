"""`emit()` and `track()`: one JSONL line per event, never raising, never blocking.

    from branchpy_telemetry.client import emit, track
    emit("feature", "graph.open", attrs={"nodes": 12})
    with track("analyze", attrs={"flag_json": True}) as t:
        t.attrs["files_scanned"] = 120

Events go to `resolve_paths().active_spool`, resolved on the first event (not at
import) and again whenever `BRANCHPY_TELEMETRY_HOME` changes. The line is appended
with the lock/rename protocol of `spool.py`. Under `DO_NOT_TRACK=1` or
`BRANCHPY_TELEMETRY=off` nothing is written. Every event that is not written is
counted by reason (`emitter_stats()`) and logged once per reason, never raised.

`build_event()` + `write_event()` are the strict pair for callers that must report
bad input (the CLI's `branchpy telemetry emit` exits 2 on a UsageError).
`Emitter(paths)` is an explicit instance (tests, the daemon); the module functions
use one default instance per process.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import threading
import uuid
import weakref
from typing import Any

import msgspec

from branchpy_telemetry.client.contracts.consent import consent_withdrawn, env_probe, read_env
from branchpy_telemetry.client.contracts.errors import UsageError
from branchpy_telemetry.client.contracts.event import (
    CATEGORIES,
    EVENT_VERSION,
    MAX_DURATION_MS,
    SOURCES,
    EventRecord,
)
from branchpy_telemetry.client.contracts.limits import MAX_ATTRS_PER_EVENT
from branchpy_telemetry.client.contracts.paths import HOME_ENV, TelemetryPaths, resolve_paths
from branchpy_telemetry.client.emitter.error_info import to_error_info
from branchpy_telemetry.client.emitter.spool_appender import SpoolAppender, SpoolWriteError
from branchpy_telemetry.client.emitter.stamping import STAMPER

SESSION_ENV = "BRANCHPY_SESSION_ID"
MAX_NAME_CHARS = 200
MAX_LINE_BYTES = 64 * 1024
DROP_REASONS = ("write_error", "invalid", "consent")
_CATEGORY_SET, _SOURCE_SET = frozenset(CATEGORIES), frozenset(SOURCES)
_log = logging.getLogger("branchpy_telemetry.client.emitter.emit")
# attrs values msgspec cannot encode natively (Path, Decimal, custom objects) are kept as
# their str(): the event survives, and the exporter's privacy rules still apply to the text.
_encode = msgspec.json.Encoder(enc_hook=str).encode
_V_PREFIX = b'{"v":%d,' % EVENT_VERSION


class EmitterStats:
    """Counts written and dropped events; logs the first drop of each kind."""

    def __init__(self) -> None:
        self.emitted = 0  # incremented by the spool writer under its lock
        self.dropped = dict.fromkeys(DROP_REASONS, 0)
        self.dropped_attrs = 0  # attrs past MAX_ATTRS_PER_EVENT, cut from events that were kept
        self.last_detail: dict[str, str] = {}  # reason -> why the latest drop of that kind happened
        self._logged: set[str] = set()
        self._lock = threading.Lock()
        _all_stats.add(self)

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at fork time

    def count_drop(self, reason: str, detail: str) -> None:
        with self._lock:
            self.dropped[reason] += 1
            self.last_detail[reason] = detail
            first = self._first(reason)
        if first and reason != "consent":
            _warn("emit.dropped reason=%s detail=%s (further drops of this kind are only counted)",
                  reason, detail)

    def count_dropped_attrs(self, count: int) -> None:
        with self._lock:
            self.dropped_attrs += count
            first = self._first("attrs")
        if first:
            _warn("emit.attrs_dropped count=%d (an event keeps its first %d attrs; further drops are "
                  "only counted)", count, MAX_ATTRS_PER_EVENT)

    def _first(self, kind: str) -> bool:
        first = kind not in self._logged
        self._logged.add(kind)
        return first

    def snapshot(self) -> dict:
        with self._lock:
            return {"emitted": self.emitted, "dropped": dict(self.dropped),
                    "dropped_attrs": self.dropped_attrs}


def _warn(message: str, *args: object) -> None:
    try:  # stdlib logging: unconfigured, it goes to stderr, never to stdout
        _log.warning(message, *args)
    except Exception:  # noqa: S110 - a broken log handler must not break emit()
        pass


_appenders: weakref.WeakSet[SpoolAppender] = weakref.WeakSet()
_all_stats: weakref.WeakSet[EmitterStats] = weakref.WeakSet()
_session = {"id": None}


def _after_fork_in_child() -> None:
    for appender in list(_appenders):
        appender.after_fork_in_child()
    for stats in list(_all_stats):
        stats.after_fork_in_child()
    _session["id"] = None  # a forked child is a new process, hence a new session
    global _default_lock
    _default_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def current_session_id() -> str:
    """This process's session id: `BRANCHPY_SESSION_ID` if set, else a random uuid4 hex."""
    sid = _session["id"]
    if sid is None:
        sid = _session["id"] = read_env(SESSION_ENV) or uuid.uuid4().hex
    return sid


class Emitter:
    """Builds, validates and appends events to one spool. Thread- and fork-safe."""

    def __init__(self, paths: TelemetryPaths | None = None, *, session_id: str | None = None,
                 source: str = "cli", stats: EmitterStats | None = None) -> None:
        if source not in _SOURCE_SET:
            raise UsageError(f"invalid source {source!r}", hint="one of: " + ", ".join(SOURCES))
        self._paths = paths  # None: resolve_paths() on the first write
        self._session_id = session_id
        self.source = source
        self.stats = stats or EmitterStats()
        self._appender: SpoolAppender | None = None

    def emit(self, category: str, name: str, *, duration_ms: float | None = None,
             status: str | None = None, session_id: str | None = None,
             correlation_id: str | None = None, error: Any = None, attrs: dict | None = None,
             source: str | None = None, **unknown: Any) -> bool:
        """Record one event. Never raises; False (and counted) when nothing was written."""
        return self._emit(category, name, duration_ms, status, session_id, correlation_id, error,
                          attrs, source, unknown)

    def _emit(self, category, name, duration_ms, status, session_id, correlation_id, error,
              attrs, source, unknown) -> bool:
        try:
            if consent_withdrawn():
                self.stats.count_drop("consent", "DO_NOT_TRACK or BRANCHPY_TELEMETRY=off")
                return False
            if unknown:
                _reject_unknown(unknown)
            record = self._record(category, name, duration_ms, status, session_id, correlation_id,
                                  error, attrs, source, strict=False)
        except UsageError as exc:
            self.stats.count_drop("invalid", exc.message)
            return False
        except Exception as exc:
            self.stats.count_drop("invalid", f"{type(exc).__name__}: {exc}")
            return False
        return self._append(record)

    def build(self, category: str, name: str, *, duration_ms: float | None = None,
              status: str | None = None, session_id: str | None = None,
              correlation_id: str | None = None, error: Any = None, attrs: dict | None = None,
              source: str | None = None, **unknown: Any) -> EventRecord:
        """A validated EventRecord. Raises UsageError naming the bad field (also for
        more than MAX_ATTRS_PER_EVENT attrs, which `emit()` would cut and count)."""
        if unknown:
            _reject_unknown(unknown)
        return self._record(category, name, duration_ms, status, session_id, correlation_id,
                            error, attrs, source, strict=True)

    def _record(self, category, name, duration_ms, status, session_id, correlation_id,
                error, attrs, source, *, strict: bool) -> EventRecord:
        if type(category) is not str or category not in _CATEGORY_SET:
            raise UsageError(f"invalid category {category!r}", hint="one of: " + ", ".join(CATEGORIES))
        if source is None:
            source = self.source
        elif type(source) is not str or source not in _SOURCE_SET:
            raise UsageError(f"invalid source {source!r}", hint="one of: " + ", ".join(SOURCES))
        if type(name) is not str or not name or len(name) > MAX_NAME_CHARS or "\n" in name:
            raise UsageError(f"invalid event name {name!r}",
                             hint=f"a non-empty single-line string of at most {MAX_NAME_CHARS} characters")
        if duration_ms is not None and (type(duration_ms) is not float
                                        or not 0 <= duration_ms <= MAX_DURATION_MS):
            duration_ms = _check_duration(duration_ms)  # ints, and the errors
        if status is not None and type(status) is not str:
            raise UsageError(f"invalid status {status!r}: expected a string such as ok or error")
        if session_id is None:
            session_id = self._session_id or _session["id"] or current_session_id()
        elif type(session_id) is not str:
            raise UsageError(f"invalid session_id {session_id!r}: expected a string")
        if correlation_id is not None and type(correlation_id) is not str:
            raise UsageError(f"invalid correlation_id {correlation_id!r}: expected a string")
        if error is not None:
            error = to_error_info(error)
        if attrs is not None and type(attrs) is not dict:
            raise UsageError(f"invalid attrs {attrs!r}: expected a dict")
        if attrs and len(attrs) > MAX_ATTRS_PER_EVENT:
            attrs = self._first_attrs(attrs, strict)
        ts, event_id = STAMPER.stamp()
        return EventRecord(
            event_id=event_id, ts=ts, category=category, source=source, name=name,
            duration_ms=duration_ms, status=status, session_id=session_id,
            correlation_id=correlation_id, error=error, attrs=attrs or None,
        )

    def _first_attrs(self, attrs: dict, strict: bool) -> dict:
        if strict:
            raise UsageError(f"{len(attrs):,} attrs given; an event has at most {MAX_ATTRS_PER_EVENT}",
                             hint="record fewer attributes, or split them over several events")
        self.stats.count_dropped_attrs(len(attrs) - MAX_ATTRS_PER_EVENT)
        return dict(itertools.islice(attrs.items(), MAX_ATTRS_PER_EVENT))

    def write(self, record: EventRecord) -> bool:
        """Append a built record. Never raises; False (and counted) when not written."""
        if consent_withdrawn():
            self.stats.count_drop("consent", "DO_NOT_TRACK or BRANCHPY_TELEMETRY=off")
            return False
        return self._append(record)

    def _append(self, record: EventRecord) -> bool:
        try:
            body = _encode(record)
            # omit_defaults would drop `"v": 1`; every line states its record version.
            line = (_V_PREFIX + body[1:] if record.v == EVENT_VERSION else body) + b"\n"
        except Exception as exc:  # e.g. an attrs value whose str() raises
            self.stats.count_drop("invalid", f"cannot encode event: {exc}")
            return False
        if len(line) > MAX_LINE_BYTES:
            self.stats.count_drop("invalid", f"event line of {len(line)} bytes > {MAX_LINE_BYTES}")
            return False
        try:
            (self._appender or self._make_appender()).append(line, self.stats)
        except (SpoolWriteError, OSError) as exc:
            self.stats.count_drop("write_error", str(exc))
            return False
        except Exception as exc:
            self.stats.count_drop("write_error", f"{type(exc).__name__}: {exc}")
            return False
        return True

    def _make_appender(self) -> SpoolAppender:
        paths = self._paths or resolve_paths()
        appender = SpoolAppender(paths.spool_dir)
        _appenders.add(appender)
        self._appender = appender
        return appender

    def close(self) -> None:
        if self._appender is not None:
            self._appender.close()
            self._appender = None


def _reject_unknown(unknown: dict) -> None:
    raise UsageError(f"unknown event field(s): {', '.join(sorted(unknown))}",
                     hint="fields: duration_ms, status, session_id, correlation_id, error, attrs, source")


def _check_duration(value: Any) -> float:
    if type(value) not in (int, float) or not math.isfinite(value) or not 0 <= value <= MAX_DURATION_MS:
        raise UsageError(f"invalid duration_ms {value!r}: expected a number from 0 to {MAX_DURATION_MS:.0e}")
    return float(value)


_default_lock = threading.Lock()
_default: dict[str, Any] = {"emitter": None, "home": None}
_home_token = env_probe(HOME_ENV)
_DEFAULT_STATS = EmitterStats()


def default_emitter() -> Emitter:
    """The per-process Emitter; rebuilt (same counters) when BRANCHPY_TELEMETRY_HOME changes."""
    home = _home_token()
    emitter = _default["emitter"]
    if emitter is not None and home == _default["home"]:
        return emitter
    with _default_lock:
        if _default["emitter"] is None or home != _default["home"]:
            if _default["emitter"] is not None:
                _default["emitter"].close()
            _default["emitter"], _default["home"] = Emitter(stats=_DEFAULT_STATS), home
        return _default["emitter"]


def emit(category: str, name: str, *, duration_ms: float | None = None, status: str | None = None,
         session_id: str | None = None, correlation_id: str | None = None, error: Any = None,
         attrs: dict | None = None, source: str | None = None, **unknown: Any) -> bool:
    """Record one event in this user's spool. Never raises, never blocks on the network.

    Fields: duration_ms, status, session_id, correlation_id, error (a dict with
    code/type/message, an ErrorInfo or an exception), attrs (a dict), source (default
    "cli"). Returns whether the line was written (see emitter_stats() for why not).
    """
    try:
        return default_emitter()._emit(category, name, duration_ms, status, session_id,
                                       correlation_id, error, attrs, source, unknown)
    except Exception:
        return False


def build_event(category: str, name: str, **fields: Any) -> EventRecord:
    """A validated EventRecord for the default spool. Raises UsageError on bad input."""
    return default_emitter().build(category, name, **fields)


def write_event(record: EventRecord) -> bool:
    """Append a record built by build_event(). Never raises; False when not written."""
    try:
        return default_emitter().write(record)
    except Exception:
        return False


def last_write_error() -> str | None:
    """Why the latest event of this process could not be written to the spool, if one could not."""
    return _DEFAULT_STATS.last_detail.get("write_error")


def emitter_stats() -> dict:
    """`{"emitted": n, "dropped": {"write_error": n, "invalid": n, "consent": n}, "dropped_attrs": n}`
    for this process (`dropped_attrs`: attrs cut from events that were written)."""
    return _DEFAULT_STATS.snapshot()
