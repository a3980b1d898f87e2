"""Configuration (keys and defaults: docs/cli.md): TOML decoded straight into msgspec Structs.

Precedence: defaults < file < `BRANCHPY_TELEMETRY_*` env < explicit flags.
Unknown keys are an error that names the key. Loaded in `main()` and passed
down; nothing here runs at import.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec

from branchpy_telemetry.client.contracts.errors import ConfigError, StorageError, UsageError
from branchpy_telemetry.client.contracts.paths import ensure_private_dir
from branchpy_telemetry.client.contracts.timewindow import parse_duration
from branchpy_telemetry.client.infra.atomic_write import write_atomic

DEFAULT_ENDPOINT = "http://127.0.0.1:8787/api/telemetry"
INTERVAL_FLOOR_SECONDS = 10.0


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    pass


class AutoConfig(_Section):
    interval: str = "6h"
    dry_run: bool = False
    daily_upload_budget_mb: float = 50.0


class RotationConfig(_Section):
    max_file_mb: float = 8.0
    max_age: str = "24h"


class RetentionConfig(_Section):
    keep: str = "14d"
    max_total_mb: float = 200.0


class SourcesConfig(_Section):
    extension_dir: str | None = None


class TelemetrySection(_Section):
    mode: Literal["manual", "auto"] = "manual"
    endpoint: str = DEFAULT_ENDPOINT
    api_key: str | None = None
    max_upload_size_mb: float = 5.0
    auto: AutoConfig = msgspec.field(default_factory=AutoConfig)
    rotation: RotationConfig = msgspec.field(default_factory=RotationConfig)
    retention: RetentionConfig = msgspec.field(default_factory=RetentionConfig)
    sources: SourcesConfig = msgspec.field(default_factory=SourcesConfig)
    # path of the event catalog (what may leave the machine); None = the bundled BranchPy catalog
    catalog: str | None = None
    # "off" blocks every delivery, auto mode included, whatever the environment says
    consent: Literal["on", "off"] = "on"


class Config(_Section):
    telemetry: TelemetrySection = msgspec.field(default_factory=TelemetrySection)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.telemetry.max_upload_size_mb * 1024 * 1024)


# The dotted keys users may get/set, in display order (explicit, no reflection magic).
KEYS: tuple[str, ...] = (
    "telemetry.mode",
    "telemetry.endpoint",
    "telemetry.api_key",
    "telemetry.max_upload_size_mb",
    "telemetry.auto.interval",
    "telemetry.auto.dry_run",
    "telemetry.auto.daily_upload_budget_mb",
    "telemetry.rotation.max_file_mb",
    "telemetry.rotation.max_age",
    "telemetry.retention.keep",
    "telemetry.retention.max_total_mb",
    "telemetry.sources.extension_dir",
    "telemetry.catalog",
    "telemetry.consent",
)
_DURATION_KEYS = {"telemetry.auto.interval", "telemetry.rotation.max_age", "telemetry.retention.keep"}
_SECRET_KEYS = {"telemetry.api_key"}
# path keys: absolute paths; "" (or null) restores the default
PATH_KEYS = ("telemetry.sources.extension_dir", "telemetry.catalog")
# What each key takes, for the hint of an error about its value.
VALUE_HINTS: dict[str, str] = {
    "telemetry.mode": "manual or auto",
    "telemetry.endpoint": "the backend's base URL, http(s)://HOST[:PORT]/api/telemetry",
    "telemetry.api_key": "an ingest key (`branchpy-telemetry-backend keys create --scope ingest`)",
    "telemetry.max_upload_size_mb": "a number of megabytes greater than 0, e.g. 5",
    "telemetry.auto.interval": f"a duration of at least {INTERVAL_FLOOR_SECONDS:g}s: 30s, 30m, 6h, 1d",
    "telemetry.auto.dry_run": "true or false",
    "telemetry.auto.daily_upload_budget_mb": "a number of megabytes greater than 0, e.g. 50",
    "telemetry.rotation.max_file_mb": "a number of megabytes greater than 0, e.g. 8",
    "telemetry.rotation.max_age": "a duration: a number and a unit, e.g. 30m, 24h, 7d",
    "telemetry.retention.keep": "a duration: a number and a unit, e.g. 24h, 14d",
    "telemetry.retention.max_total_mb": "a number of megabytes greater than 0, e.g. 200",
    "telemetry.sources.extension_dir": "an absolute folder path (\"\" restores the default)",
    "telemetry.catalog": "the absolute path of a catalog TOML file (\"\" restores the bundled catalog)",
    "telemetry.consent": "on or off",
}
_POSITIVE_KEYS = {
    "telemetry.max_upload_size_mb",
    "telemetry.auto.daily_upload_budget_mb",
    "telemetry.rotation.max_file_mb",
    "telemetry.retention.max_total_mb",
}


def env_var_for(key: str) -> str:
    """`telemetry.auto.dry_run` -> `BRANCHPY_TELEMETRY_AUTO_DRY_RUN`."""
    return "BRANCHPY_" + key.upper().replace(".", "_")


def load_config(
    config_file: Path | None,
    env: dict[str, str] | os._Environ[str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Config:
    """defaults < file < env < overrides (dotted keys -> values)."""
    env = os.environ if env is None else env
    tree: dict[str, Any] = read_config_file(config_file) if config_file else {}
    for key in KEYS:
        raw = env.get(env_var_for(key))
        if raw is not None and raw != "":
            _set_in_tree(tree, key, raw)
    for key, value in (overrides or {}).items():
        _require_known(key)
        _set_in_tree(tree, key, value)
    return config_from_tree(tree, origin=str(config_file) if config_file else "defaults")


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", hint="fix or delete the file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def config_from_tree(tree: dict[str, Any], origin: str | None = "config") -> Config:
    """Decode and check every value; a bad one is a ConfigError naming the key once, with a hint
    saying what values it takes. `origin` (the file, or None) prefixes the message."""
    try:
        config = msgspec.convert(tree, Config, strict=False)
    except msgspec.ValidationError as exc:
        key, problem = _describe_validation_error(exc)
        if problem == "unknown":
            raise ConfigError(_located(origin, f"unknown key {key!r}"),
                              hint="valid keys: " + ", ".join(KEYS)) from None
        raise _bad_value(origin, key, problem) from None
    _check_values(config, origin)
    return config


def get_value(config: Config, key: str) -> Any:
    _require_known(key)
    node: Any = config
    for part in key.split("."):
        node = getattr(node, part)
    return node


def flatten(config: Config, *, reveal_secrets: bool = False) -> dict[str, Any]:
    """Every key with its effective value; secrets masked unless asked."""
    out = {}
    for key in KEYS:
        value = get_value(config, key)
        if key in _SECRET_KEYS and value and not reveal_secrets:
            value = value[:4] + "…" if len(value) > 8 else "…"
        out[key] = value
    return out


def set_value_in_file(config_file: Path, key: str, value: Any) -> Config:
    """Validate and persist one key; returns the file's resulting config."""
    return set_values_in_file(config_file, {key: value})


def set_values_in_file(config_file: Path, values: dict[str, Any]) -> Config:
    """Validate and persist several keys at once: all are written, or none.

    Every value gets the checks loading applies (types, enums, durations, the
    auto-mode interval floor, positive sizes, the endpoint's form, a catalog
    path that names a valid catalog). The file keeps its comments and layout
    (only the keys' lines change, or are added), and is written 0600 in a
    0700 folder, atomically: it holds the API key. A symlinked config file is
    written where the link points.
    """
    import tomlkit  # only `config set` needs a TOML writer that keeps comments

    for key in values:
        _require_known(key)
    target = Path(os.path.realpath(config_file)) if config_file.is_symlink() else config_file
    document = _read_document(target)
    tree = document.unwrap()
    for key, value in values.items():
        _set_in_tree(tree, key, value, origin=None)
    config = config_from_tree(tree, origin=None)  # validate before writing
    if "telemetry.catalog" in values:
        _check_catalog(config.telemetry.catalog)
    for key, value in values.items():
        removed = key in PATH_KEYS and value in ("", None)
        _set_in_document(document, key, None if removed else get_value(config, key))
    write_config_bytes(target, tomlkit.dumps(document).encode())
    return config


def read_config_bytes(config_file: Path) -> bytes | None:
    """The file as it is now (None when there is none): what a failed change puts back."""
    try:
        return config_file.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{config_file}: cannot read: {exc.strerror}") from None


def restore_config_bytes(config_file: Path, data: bytes | None) -> None:
    """Put back what `read_config_bytes` returned (removing the file if there was none)."""
    target = Path(os.path.realpath(config_file)) if config_file.is_symlink() else config_file
    if data is None:
        target.unlink(missing_ok=True)
    else:
        write_config_bytes(target, data)


def write_config_bytes(target: Path, data: bytes) -> None:
    try:
        ensure_private_dir(target.parent)
        write_atomic(target, data)
    except OSError as exc:
        raise StorageError(f"cannot write {target}: {exc.strerror or exc}",
                           hint="the file is unchanged; free disk space or fix the folder's permissions"
                           ) from None


def interval_problem(text: str) -> str | None:
    """Why `text` cannot be the auto-mode interval (not a duration, or below the floor), or None."""
    try:
        seconds = parse_duration(text).total_seconds()
    except UsageError:
        return f"invalid duration {text!r}"
    if seconds < INTERVAL_FLOOR_SECONDS:
        return f"{text!r} is below the floor of {INTERVAL_FLOOR_SECONDS:g}s"
    return None


def _read_document(path: Path):
    import tomlkit

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", hint="fix or delete the file") from None


def _set_in_document(document, key: str, value: Any) -> None:
    """Set (or, for None, remove) a dotted key in a tomlkit document, creating tables as needed."""
    import tomlkit

    *parents, leaf = key.split(".")
    node = document
    for part in parents:
        if part not in node:
            if value is None:
                return
            inline = isinstance(node, tomlkit.items.InlineTable)
            node[part] = tomlkit.inline_table() if inline else tomlkit.table()
        node = node[part]
    if value is None:
        if leaf in node:
            del node[leaf]
    else:
        node[leaf] = value


def _require_known(key: str) -> None:
    if key not in KEYS:
        raise ConfigError(f"unknown config key {key!r}", hint="valid keys: " + ", ".join(KEYS))


def _set_in_tree(tree: dict[str, Any], key: str, value: Any, origin: str | None = "environment") -> None:
    *parents, leaf = key.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(_located(origin, f"config key {part!r} must be a table"))
    if isinstance(value, str) and key == "telemetry.auto.dry_run":
        lowered = value.strip().lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise _bad_value(origin, key, f"expected true or false, got {value!r}")
        value = lowered in ("true", "1", "yes", "on")
    if key in PATH_KEYS and value in ("", None):
        node.pop(leaf, None)
        return
    node[leaf] = value


def _check_values(config: Config, origin: str | None) -> None:
    for key in _DURATION_KEYS:
        value = get_value(config, key)
        try:
            parse_duration(value)
        except Exception:
            raise _bad_value(origin, key, f"invalid duration {value!r}") from None
    problem = interval_problem(config.telemetry.auto.interval)
    if problem:
        raise _bad_value(origin, "telemetry.auto.interval", problem)
    for key in _POSITIVE_KEYS:
        if get_value(config, key) <= 0:
            raise _bad_value(origin, key, "must be greater than 0")
    endpoint = config.telemetry.endpoint
    if not re.match(r"^https?://[^/\s]+", endpoint):
        raise _bad_value(origin, "telemetry.endpoint", f"expected an http(s) URL, got {endpoint!r}")
    for key in PATH_KEYS:
        value = get_value(config, key)
        if value is not None and not os.path.isabs(value):
            raise _bad_value(origin, key, f"expected an absolute path, got {value!r}")


def _check_catalog(path: str | None) -> None:
    """A catalog path must name a catalog that can be used (the same check every export makes)."""
    from branchpy_telemetry.client.contracts.catalog import load_catalog
    from branchpy_telemetry.client.contracts.errors import CatalogInvalidError

    try:
        load_catalog(path)
    except CatalogInvalidError as exc:
        raise ConfigError(f"telemetry.catalog: {exc.message}", details=exc.details,
                          hint="see every problem with `branchpy telemetry catalog check FILE`; "
                               + VALUE_HINTS["telemetry.catalog"]) from None


def _located(origin: str | None, message: str) -> str:
    return f"{origin}: {message}" if origin else message


def _bad_value(origin: str | None, key: str | None, problem: str) -> ConfigError:
    """One message naming the key once, and a hint saying what it takes."""
    if key is None:
        return ConfigError(_located(origin, problem))
    return ConfigError(_located(origin, f"{key}: {problem}"),
                       hint=f"{key} takes {VALUE_HINTS[key]}" if key in VALUE_HINTS else None)


def _describe_validation_error(exc: msgspec.ValidationError) -> tuple[str | None, str]:
    """(dotted key, problem) from msgspec's `Expected `float`, got `str` - at `$.telemetry.x``;
    an unknown field comes back as its dotted key with the problem "unknown"."""
    text = str(exc)
    match = re.match(r"Object contains unknown field `([^`]+)`(?: - at `\$\.?([^`]*)`)?", text)
    if match:
        where = match.group(2)
        return (f"{where}.{match.group(1)}" if where else match.group(1)), "unknown"
    match = re.match(r"(.*) - at `\$\.?([^`]*)`", text)
    if match:
        problem = match.group(1)
        return match.group(2), problem[:1].lower() + problem[1:]
    return None, text
