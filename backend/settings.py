"""BackendSettings: everything the ingestion server can be tuned by.

Defaults < `BRANCHPY_TELEMETRY_BACKEND_<FIELD>` environment variables <
explicit overrides (CLI flags). Loaded in `main()` and passed down; nothing
reads the environment at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

import msgspec

from branchpy_telemetry.backend.sinks.shards import DEFAULT_WRITE_SHARDS, MAX_WRITE_SHARDS
from branchpy_telemetry.client.contracts.errors import ConfigError
from branchpy_telemetry.client.contracts.timewindow import parse_duration

ENV_PREFIX = "BRANCHPY_TELEMETRY_BACKEND_"
# BRANCHPY_TELEMETRY_BACKEND_DB names the database used when no `--db` is given.
DB_ENV = ENV_PREFIX + "DB"


class BackendSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    db_urls: list[str] = []  # empty -> $BRANCHPY_TELEMETRY_BACKEND_DB or the SQLite default
    max_upload_size_mb: float = 5.0
    # what composite secondaries have yet to receive (several --db); relative to the working directory
    secondary_backlog: str = ".branchpy/telemetry/secondary-backlog.db"
    # token buckets per API key (rate = tokens per second; 0 disables)
    upload_rate_per_s: float = 50.0  # per key; one ingest key is often shared by many installs
    upload_burst: int = 200
    query_rate_per_s: float = 50.0
    query_burst: int = 300
    # SLO targets for GET /errors/slo (slo.py): one success rate, a p95 per command (else the default)
    slo_success_target: float = 0.99
    slo_p95_target_ms: float = 1000.0
    slo_p95_targets: dict[str, float] = {}  # command name -> p95 target in ms; env: "analyze=5000,lint=300"
    slo_window: str = "7d"
    # the event catalog this server stores by (a TOML file); None: the bundled BranchPy catalog
    catalog: str | None = None
    # SQL sink writes: how many shards an upload's aggregates spread over (sinks/shards.py), and how long
    # a write that keeps conflicting with concurrent writers is retried before the upload gets a 503
    write_shards: int = DEFAULT_WRITE_SHARDS
    write_retry_deadline_s: float = 10.0
    # the HTTP server (see wsgi_server.ServerLimits)
    connection_limit: int = 1000
    keepalive_timeout_s: float = 75.0  # above a load balancer's idle timeout
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    body_min_rate: int = 16 * 1024  # bytes per second, after body_timeout_s
    trusted_proxy: str | None = None  # a load balancer's address: its X-Forwarded-For names the client
    health_timeout_s: float = 3.0  # /health answers within this, a frozen database included
    auth_cache_seconds: float = 10.0  # how long a looked-up key (known or unknown) is cached
    revocation_check_seconds: float = 1.0  # a key revoked anywhere stops working within this time
    # failed authentications per client address (a guessing client costs no query past the burst)
    auth_failure_rate_per_s: float = 0.5
    auth_failure_burst: int = 20
    auth_failure_addresses: int = 100_000  # addresses tracked (least recently failed are forgotten)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_size_mb * 1024 * 1024)

    @property
    def slo_window_delta(self) -> timedelta:
        return parse_duration(self.slo_window)


_FIELDS = BackendSettings.__struct_fields__


def load_backend_settings(env: Mapping[str, str] | None = None, **overrides: object) -> BackendSettings:
    """Build settings from the environment plus explicit overrides (None = not given)."""
    env = os.environ if env is None else env
    raw: dict[str, object] = {}
    for field in _FIELDS:
        value = env.get(ENV_PREFIX + field.upper())
        if value is not None and value != "":
            raw[field] = value.split(",") if field == "db_urls" else value
    if isinstance(raw.get("slo_p95_targets"), str):
        raw["slo_p95_targets"] = parse_targets(raw["slo_p95_targets"].split(","))
    if env.get(DB_ENV) and "db_urls" not in raw:
        raw["db_urls"] = [env[DB_ENV]]
    for key, value in overrides.items():
        if key not in _FIELDS:
            raise ConfigError(f"unknown backend setting {key!r}")
        if value is not None and value != []:
            raw[key] = value
    try:
        settings = msgspec.convert(raw, BackendSettings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid backend setting: {exc}",
                          hint=f"check the {ENV_PREFIX}* environment variables and flags") from None
    validate_settings(settings)
    return settings


def parse_targets(items: list[str]) -> dict[str, str]:
    """["analyze=5000", "lint=300"] -> {"analyze": "5000", "lint": "300"} (converted and checked later)."""
    out = {}
    for item in items:
        name, sep, value = item.strip().partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ConfigError(f"invalid SLO target {item.strip()!r}",
                              hint="use NAME=MILLISECONDS, e.g. analyze=5000")
        out[name.strip()] = value.strip()
    return out


def validate_settings(settings: BackendSettings) -> None:
    if settings.max_upload_size_mb <= 0:
        raise ConfigError("max_upload_size_mb must be > 0")
    if not 0 < settings.slo_success_target < 1:
        raise ConfigError("slo_success_target must be between 0 and 1 (e.g. 0.99)")
    if settings.slo_p95_target_ms <= 0 or any(v <= 0 for v in settings.slo_p95_targets.values()):
        raise ConfigError("p95 targets (slo_p95_target_ms, slo_p95_targets) must be > 0")
    if settings.upload_rate_per_s < 0 or settings.query_rate_per_s < 0:
        raise ConfigError("rate limits must be >= 0 (0 disables)")
    for name in ("health_timeout_s", "keepalive_timeout_s", "header_timeout_s", "body_timeout_s"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{name} must be > 0")
    if settings.connection_limit < 1 or settings.body_min_rate < 1:
        raise ConfigError("connection_limit and body_min_rate must be >= 1")
    if settings.auth_failure_rate_per_s < 0 or settings.revocation_check_seconds < 0:
        raise ConfigError("auth_failure_rate_per_s and revocation_check_seconds must be >= 0")
    if settings.upload_burst < 1 or settings.query_burst < 1 or settings.auth_failure_burst < 1:
        raise ConfigError("bursts must be >= 1")
    if not 1 <= settings.write_shards <= MAX_WRITE_SHARDS:
        raise ConfigError(f"write_shards must be between 1 and {MAX_WRITE_SHARDS}")
    if settings.write_retry_deadline_s < 0:
        raise ConfigError("write_retry_deadline_s must be >= 0 (0: one attempt, no retry)")
    parse_duration(settings.slo_window)  # raises a UsageError naming the value
