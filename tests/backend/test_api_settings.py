"""BackendSettings: defaults < BRANCHPY_TELEMETRY_BACKEND_* env < explicit overrides; bad values named."""

from __future__ import annotations

import pytest

from branchpy_telemetry.backend.settings import BackendSettings, load_backend_settings
from branchpy_telemetry.client.contracts.errors import ConfigError, UsageError


def test_defaults():
    settings = load_backend_settings({})
    assert settings == BackendSettings()
    assert settings.max_upload_bytes == 5 * 1024 * 1024
    assert settings.slo_success_target == 0.99 and settings.slo_p95_target_ms == 1000.0
    assert settings.slo_window == "7d"


def test_environment_then_overrides():
    prefix = "BRANCHPY_TELEMETRY_BACKEND_"
    env = {prefix + "MAX_UPLOAD_SIZE_MB": "2", prefix + "SLO_WINDOW": "24h", prefix + "DB": "sqlite:///a.db",
           prefix + "UPLOAD_BURST": "7"}
    settings = load_backend_settings(env)
    assert settings.max_upload_bytes == 2 * 1024 * 1024 and settings.slo_window == "24h"
    assert settings.db_urls == ["sqlite:///a.db"] and settings.upload_burst == 7
    overridden = load_backend_settings(env, db_urls=["mysql://u@h/db", "sqlite:///b.db"], upload_burst=None)
    assert overridden.db_urls == ["mysql://u@h/db", "sqlite:///b.db"] and overridden.upload_burst == 7


@pytest.mark.parametrize("name, value", [
    ("MAX_UPLOAD_SIZE_MB", "lots"), ("MAX_UPLOAD_SIZE_MB", "0"), ("SLO_SUCCESS_TARGET", "99"),
    ("SLO_P95_TARGET_MS", "-1"), ("UPLOAD_RATE_PER_S", "-2"), ("QUERY_BURST", "0"),
])
def test_bad_values_are_config_errors(name, value):
    with pytest.raises(ConfigError):
        load_backend_settings({f"BRANCHPY_TELEMETRY_BACKEND_{name}": value})


def test_bad_slo_window_names_the_value():
    with pytest.raises(UsageError, match="fortnight"):
        load_backend_settings({"BRANCHPY_TELEMETRY_BACKEND_SLO_WINDOW": "fortnight"})


def test_unknown_override_is_refused():
    with pytest.raises(ConfigError, match="colour"):
        load_backend_settings({}, colour="blue")
