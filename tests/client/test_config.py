"""Config (keys and defaults: docs/cli.md): defaults < file < env < flags; unknown keys name the key."""

from __future__ import annotations

import pytest

from branchpy_telemetry.client.contracts import config as cfg
from branchpy_telemetry.client.contracts.errors import ConfigError


def test_defaults_match_the_documented_table():
    config = cfg.load_config(None, env={})
    assert cfg.flatten(config) == {
        "telemetry.mode": "manual",
        "telemetry.endpoint": "http://127.0.0.1:8787/api/telemetry",
        "telemetry.api_key": None,
        "telemetry.max_upload_size_mb": 5.0,
        "telemetry.auto.interval": "6h",
        "telemetry.auto.dry_run": False,
        "telemetry.auto.daily_upload_budget_mb": 50.0,
        "telemetry.rotation.max_file_mb": 8.0,
        "telemetry.rotation.max_age": "24h",
        "telemetry.retention.keep": "14d",
        "telemetry.retention.max_total_mb": 200.0,
        "telemetry.sources.extension_dir": None,
        "telemetry.catalog": None,
        "telemetry.consent": "on",
    }
    assert config.max_upload_bytes == 5 * 1024 * 1024


def test_precedence_defaults_file_env_flags(tmp_path):
    path = tmp_path / "telemetry.toml"
    path.write_text('[telemetry]\nmode = "auto"\nmax_upload_size_mb = 3\n[telemetry.auto]\ninterval = "1h"\n')
    from_file = cfg.load_config(path, env={})
    assert (from_file.telemetry.mode, from_file.telemetry.max_upload_size_mb) == ("auto", 3)
    assert from_file.telemetry.auto.interval == "1h"

    env = {"BRANCHPY_TELEMETRY_AUTO_INTERVAL": "2h", "BRANCHPY_TELEMETRY_AUTO_DRY_RUN": "yes"}
    from_env = cfg.load_config(path, env=env)
    assert from_env.telemetry.auto.interval == "2h"
    assert from_env.telemetry.auto.dry_run is True
    assert from_env.telemetry.mode == "auto"

    flagged = cfg.load_config(path, env=env, overrides={"telemetry.auto.interval": "30m"})
    assert flagged.telemetry.auto.interval == "30m"


def test_unknown_key_in_file_is_named(tmp_path):
    path = tmp_path / "telemetry.toml"
    path.write_text('[telemetry.auto]\nintervall = "1h"\n')
    with pytest.raises(ConfigError, match=r"unknown key 'telemetry.auto.intervall'"):
        cfg.load_config(path, env={})


def test_unknown_top_level_table_is_named(tmp_path):
    path = tmp_path / "telemetry.toml"
    path.write_text('[telemtry]\nmode = "auto"\n')
    with pytest.raises(ConfigError, match=r"unknown key 'telemtry'"):
        cfg.load_config(path, env={})


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[telemetry]\nmode = "sometimes"\n', "telemetry.mode"),
        ('[telemetry]\nmax_upload_size_mb = "big"\n', "telemetry.max_upload_size_mb"),
        ('[telemetry]\nmax_upload_size_mb = -1\n', "must be greater than 0"),
        ('[telemetry.auto]\ninterval = "soon"\n', "invalid duration"),
        ('[telemetry]\nendpoint = "ftp://x"\n', "expected an http"),
        ("[telemetry\n", "not valid TOML"),
    ],
)
def test_wrong_types_and_values_are_clear_errors(tmp_path, toml, message):
    path = tmp_path / "telemetry.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        cfg.load_config(path, env={})


def test_missing_file_means_defaults(tmp_path):
    assert cfg.load_config(tmp_path / "absent.toml", env={}) == cfg.Config()


def test_set_value_persists_validated_and_typed(tmp_path):
    path = tmp_path / "sub" / "telemetry.toml"
    cfg.set_value_in_file(path, "telemetry.auto.dry_run", "true")
    cfg.set_value_in_file(path, "telemetry.max_upload_size_mb", 2)
    config = cfg.load_config(path, env={})
    assert config.telemetry.auto.dry_run is True
    assert config.telemetry.max_upload_size_mb == 2
    assert "dry_run = true" in path.read_text()


def test_set_invalid_value_leaves_file_untouched(tmp_path):
    path = tmp_path / "telemetry.toml"
    cfg.set_value_in_file(path, "telemetry.mode", "auto")
    before = path.read_bytes()
    with pytest.raises(ConfigError):
        cfg.set_value_in_file(path, "telemetry.mode", "never")
    with pytest.raises(ConfigError, match="unknown config key"):
        cfg.set_value_in_file(path, "telemetry.nope", "1")
    assert path.read_bytes() == before


def test_api_key_is_masked_unless_revealed():
    config = cfg.config_from_tree({"telemetry": {"api_key": "bpk_abcdefghijklmnop"}})
    assert cfg.flatten(config)["telemetry.api_key"] == "bpk_…"
    assert cfg.flatten(config, reveal_secrets=True)["telemetry.api_key"] == "bpk_abcdefghijklmnop"


def test_env_var_names_follow_the_dotted_keys():
    assert cfg.env_var_for("telemetry.auto.dry_run") == "BRANCHPY_TELEMETRY_AUTO_DRY_RUN"
    assert cfg.env_var_for("telemetry.mode") == "BRANCHPY_TELEMETRY_MODE"
