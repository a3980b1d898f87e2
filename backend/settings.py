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

from branchpy_telemetry.client.errors import ConfigError
from branchpy_telemetry.client.timewindow import parse_duration

ENV_PREFIX = "BRANCHPY_TELEMETRY_BACKEND_"
# DESIGN §10: BRANCHPY_TELEMETRY_BACKEND_DB sets the default database.
DB_ENV = ENV_PREFIX + "DB"


class BackendSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    db_urls: list[str] = []  # empty -> $BRANCHPY_TELEMETRY_BACKEND_DB or the SQLite default
    max_upload_size_mb: float = 5.0
    # token buckets per API key (rate = tokens per second; 0 disables)
    upload_rate_per_s: float = 50.0  # per key; one ingest key is often shared by many installs
    upload_burst: int = 200
    query_rate_per_s: float = 50.0
    query_burst: int = 300
    # SLO targets for GET /errors/slo
    slo_success_target: float = 0.99
    slo_p95_target_ms: float = 1000.0
    slo_window: str = "7d"
    auth_cache_seconds: float = 10.0  # a revoked key stops working within this time
    # the event catalog this server stores by (a TOML file); None: the bundled BranchPy catalog
    catalog: str | None = None

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


def validate_settings(settings: BackendSettings) -> None:
    if settings.max_upload_size_mb <= 0:
        raise ConfigError("max_upload_size_mb must be > 0")
    if not 0 < settings.slo_success_target < 1:
        raise ConfigError("slo_success_target must be between 0 and 1 (e.g. 0.99)")
    if settings.slo_p95_target_ms <= 0:
        raise ConfigError("slo_p95_target_ms must be > 0")
    if settings.upload_rate_per_s < 0 or settings.query_rate_per_s < 0:
        raise ConfigError("rate limits must be >= 0 (0 disables)")
    if settings.upload_burst < 1 or settings.query_burst < 1:
        raise ConfigError("bursts must be >= 1")
    parse_duration(settings.slo_window)  # raises a UsageError naming the value
