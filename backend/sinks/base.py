"""The storage contract every sink implements: SQLite, MySQL, Composite, Memory.

The HTTP layer only talks to this interface; `sinks/registry.py` maps a
URL scheme to a class. Every method is safe to call from several threads
(the WSGI server's workers). Results are plain msgspec Structs so the API
can encode them directly and so every sink answers in the same shape.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Literal

import msgspec

from branchpy_telemetry.client.contracts.schema import TelemetryPackage

if TYPE_CHECKING:
    from branchpy_telemetry.backend.sinks.usage_types import InstallCount, UsageFilter, UsageGroup


class SinkError(Exception):
    """A sink cannot serve (connection lost, database gone, disk full).
    The API answers 503 `sink_unavailable`; nothing is half-written."""

    code = "sink_unavailable"


class SinkBusyError(SinkError):
    """A write kept conflicting with concurrent writers until its retry deadline
    (write_retry.py). Nothing was written; the API answers 503 `sink_busy` with
    `Retry-After: retry_after_s`."""

    code = "sink_busy"

    def __init__(self, message: str, *, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InvalidPackageError(ValueError):
    """The package passed validation but a sink cannot store it (e.g. an event
    `ts` that is not ISO-8601). Raised before anything is written; the API
    answers 422 with `pointer`."""

    code = "invalid_package"

    def __init__(self, message: str, *, pointer: str | None = None):
        super().__init__(message)
        self.message = message
        self.pointer = pointer


# ---- inputs ---------------------------------------------------------------

class EventFilter(msgspec.Struct, kw_only=True):
    category: str | None = None
    source: str | None = None
    name: str | None = None
    status: str | None = None
    session_id: str | None = None
    error_hash: str | None = None
    start: datetime | None = None  # inclusive, UTC
    end: datetime | None = None  # exclusive, UTC


class TimeRange(msgspec.Struct, kw_only=True):
    start: datetime | None = None
    end: datetime | None = None


# ---- results --------------------------------------------------------------

class StoreResult(msgspec.Struct, kw_only=True):
    package_id: str
    accepted_events: int
    duplicate_events: int
    duplicate: bool  # the package_id was already stored: nothing new written


class StoredEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    event_id: str
    package_id: str
    ts: str
    category: str
    source: str
    name: str
    duration_ms: float | None = None
    status: str | None = None
    session_id: str | None = None
    correlation_id: str | None = None
    error_code: str | None = None
    error_hash: str | None = None
    attrs: dict = {}
    governance_id: str | None = None


class EventPage(msgspec.Struct, kw_only=True):
    items: list[StoredEvent]
    page: int
    per_page: int
    total: int


class Stats(msgspec.Struct, kw_only=True):
    events: int
    packages: int
    sessions: int
    errors: int
    installs: int
    last_upload: str | None


class KeyCount(msgspec.Struct, kw_only=True):
    key: str
    count: int


class TimelineBucket(msgspec.Struct, kw_only=True):
    bucket: str  # ISO-8601 start of the bucket, UTC
    count: int
    errors: int


class RecentError(msgspec.Struct, kw_only=True, omit_defaults=True):
    error_hash: str
    error_code: str | None = None
    name: str | None = None  # the command or feature of its latest sighting
    count: int
    last_seen: str
    # given when the groups are read over a range (usage.py's error_rollup):
    first_seen: str | None = None
    error_type: str | None = None  # the exception type, when one left the machine
    commands: list[str] | None = None  # every command or feature it happened in


class LatencySummary(msgspec.Struct, kw_only=True):
    """Inputs for the SLO endpoint over a range."""
    total: int  # events with a status
    errors: int  # events with status == "error"
    p95_ms: float | None  # over events with a duration


class SessionRow(msgspec.Struct, kw_only=True):
    session_id: str
    first_ts: str
    last_ts: str
    duration_ms: float
    events: int
    errors: int


class SessionsSummary(msgspec.Struct, kw_only=True):
    count: int
    avg_duration_ms: float
    avg_events: float
    items: list[SessionRow]


class ApiKeyRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    key_id: str  # short public prefix, shown in `keys list`
    key_hash: str  # sha256 hex of the full key; the key itself is never stored
    scope: Literal["ingest", "read", "admin"]
    label: str | None = None
    created_at: str
    revoked_at: str | None = None


HealthState = Literal["ok", "down", "behind", "needs_migration"]


class SinkHealth(msgspec.Struct, kw_only=True, omit_defaults=True):
    ok: bool
    kind: str
    state: HealthState | None = None  # None: "ok" when ok, else "down"
    behind: int = 0  # packages this sink has yet to receive (a composite secondary catching up)
    # For logs and the operator only (may name a path, a host or a driver error): never served.
    detail: str | None = None

    @property
    def effective_state(self) -> HealthState:
        return self.state or ("ok" if self.ok else "down")


# ---- the contract ---------------------------------------------------------

class Sink(abc.ABC):
    """One storage backend. Implementations: LocalSQLiteSink, MySQLTelemetrySink,
    CompositeSink, MemorySink. `event_id` and `package_id` are unique keys."""

    kind: str = "abstract"

    @abc.abstractmethod
    def store_package(self, package: TelemetryPackage, *, receipt: str, body_bytes: int,
                      received_at: datetime) -> StoreResult:
        """Store a validated package atomically (all rows or none).
        A known package_id -> duplicate=True and nothing written; known event_ids
        are skipped and counted in duplicate_events."""

    @abc.abstractmethod
    def health(self) -> SinkHealth: ...

    @abc.abstractmethod
    def stats(self) -> Stats: ...

    @abc.abstractmethod
    def list_events(self, flt: EventFilter, page: int, per_page: int) -> EventPage:
        """Newest first (ts desc, event_id desc)."""

    @abc.abstractmethod
    def aggregate(self, dimension: Literal["category", "source"], rng: TimeRange) -> list[KeyCount]:
        """Counts per key, largest first."""

    @abc.abstractmethod
    def timeline(self, bucket: Literal["hour", "day"], rng: TimeRange) -> list[TimelineBucket]:
        """Oldest bucket first; empty buckets omitted."""

    @abc.abstractmethod
    def recent_errors(self, limit: int) -> list[RecentError]:
        """Latest error groups (by error_hash), most recently seen first."""

    @abc.abstractmethod
    def latency_summary(self, rng: TimeRange) -> LatencySummary: ...

    @abc.abstractmethod
    def sessions(self, rng: TimeRange, limit: int) -> SessionsSummary: ...

    # -- breakdowns (usage.py; filters and groups: usage_types.py) --
    @abc.abstractmethod
    def usage(self, flt: UsageFilter, group_by: Sequence[str], bucket: int | None = None) -> list[UsageGroup]:
        """Sums of usage rows per `group_by` (columns of usage.USAGE_KEYS) and, with `bucket`
        (HOUR or DAY seconds), per time bucket; groups with no event left out; ordered."""

    @abc.abstractmethod
    def name_percentiles(self, flt: UsageFilter, qs: Sequence[float]) -> dict[tuple[str, str], list]:
        """(category, name) -> the `qs` duration percentiles (ms) over the range; only the category and
        name filters apply (the histograms are per command, over every source and platform)."""

    @abc.abstractmethod
    def install_counts(self, flt: UsageFilter, group_by: str | None, by_day: bool) -> list[InstallCount]:
        """Distinct installs over the days the range overlaps, per `group_by` (version, os or python)
        and per day; only the version, os and python filters apply."""

    @abc.abstractmethod
    def error_groups(self, flt: UsageFilter, limit: int) -> list[RecentError]:
        """The error groups seen in the range, most recently seen first; only the category and name
        filters apply."""

    @abc.abstractmethod
    def uploads(self, rng: TimeRange) -> tuple[int, str | None]:
        """(packages received in the hours the range overlaps, the latest receipt)."""

    @abc.abstractmethod
    def purge_older_than(self, cutoff: datetime, batch_size: int = 5000) -> int:
        """Delete events (and what only they feed) older than cutoff, in batches; returns rows deleted."""

    # -- API keys (stored hashed, in the primary sink's database) --
    @abc.abstractmethod
    def add_api_key(self, record: ApiKeyRecord) -> None: ...

    @abc.abstractmethod
    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None: ...

    @abc.abstractmethod
    def list_api_keys(self) -> list[ApiKeyRecord]: ...

    @abc.abstractmethod
    def revoke_api_key(self, key_id: str, revoked_at: datetime) -> bool: ...

    @abc.abstractmethod
    def revoked_key_count(self) -> int:
        """How many keys were ever revoked: grows with each revocation, so a server process
        that sees it change drops its cached keys (revocation reaches every process)."""

    def migrate(self) -> int:
        """Bring the schema to the current version; returns that version."""
        return 0

    def schema_changes(self) -> list[str]:
        """What opening and migrating this sink changed, in words, oldest first (`created database
        `telemetry` (it did not exist)`, `schema version 0 -> 2`); empty when nothing changed."""
        return list(getattr(self, "_schema_changes", ()))

    def compact(self, before: datetime, batch_size: int = 5000) -> int:
        """Fold the shards of aggregate rows wholly older than `before` into one row per key
        (sinks/compaction.py); no answer changes. Returns the rows folded (a sink without
        striped rows: 0)."""
        return 0

    def close(self) -> None:  # noqa: B027 - optional hook
        pass
