"""Consent from the environment: `DO_NOT_TRACK` and `BRANCHPY_TELEMETRY`.

`DO_NOT_TRACK=1` (or any truthy value: 1/true/yes/on, case-insensitive) or
`BRANCHPY_TELEMETRY=off` (also 0/false/no/disabled) withdraws consent,
whatever the config file says: `emit()` becomes a no-op and the daemon
refuses to upload. An empty or unrecognised value does not withdraw consent
(`DO_NOT_TRACK=0` means "track").

The check runs on every `emit()`, so a process that changes its environment
at run time is honoured at once. `os.environ.get` of a missing key costs an
exception inside `Mapping.get` (microseconds); the fast path reads the
mapping's backing dict instead, falling back to the public API if the
interpreter ever stops providing it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

DO_NOT_TRACK_ENV = "DO_NOT_TRACK"
TELEMETRY_ENV = "BRANCHPY_TELEMETRY"

_TRUTHY = frozenset({"1", "true", "yes", "on", "y"})
_OFF = frozenset({"off", "0", "false", "no", "n", "disabled", "disable"})


def consent_withdrawn(env: Mapping[str, str] | None = None) -> bool:
    """True when the environment forbids telemetry (`DO_NOT_TRACK`, `BRANCHPY_TELEMETRY=off`)."""
    if (env is None or env is os.environ) and _ENV_DATA is not None \
            and _DNT_KEY not in _ENV_DATA and _SETTING_KEY not in _ENV_DATA:
        return False  # the common case, without decoding anything
    return withdrawal_source(env) is not None


def withdrawal_source(env: Mapping[str, str] | None = None) -> str | None:
    """The variable withdrawing consent in `env` (`"DO_NOT_TRACK=1"`, `"BRANCHPY_TELEMETRY=off"`), or None."""
    if env is None or env is os.environ:
        dnt, setting = read_env(DO_NOT_TRACK_ENV), read_env(TELEMETRY_ENV)
    else:
        dnt, setting = env.get(DO_NOT_TRACK_ENV), env.get(TELEMETRY_ENV)
    if dnt is not None and dnt.strip().lower() in _TRUTHY:
        return f"{DO_NOT_TRACK_ENV}={dnt.strip()}"
    if setting is not None and setting.strip().lower() in _OFF:
        return f"{TELEMETRY_ENV}={setting.strip()}"
    return None


def caller_consent_args(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The control-protocol arguments that carry a caller's withdrawn consent to the daemon
    (added to the commands marked `consent` in client/contracts/commands.py).

    A delivery (`upload`, `sync`, `mode auto`) asked for by someone whose
    environment withdraws consent is refused by the daemon, whatever the
    daemon's own environment says: `{"consent": "off", "consent_source": "DO_NOT_TRACK=1
    in the caller's environment"}`, or `{}` when the caller consents.
    """
    source = withdrawal_source(env)
    if source is None:
        return {}
    return {"consent": "off", "consent_source": f"{source} in the caller's environment"}


def without_consent_variables(env: Mapping[str, str]) -> dict[str, str]:
    """`env` minus the consent variables: the environment a client gives the daemon it spawns.

    The daemon outlives the client; a withdrawal in one shell travels with that
    shell's requests, it must not block the user's later requests from elsewhere.
    Consent set for the daemon itself (systemd unit, config) is not affected.
    """
    return {k: v for k, v in env.items() if k not in (DO_NOT_TRACK_ENV, TELEMETRY_ENV)}


def _posix_environ_data() -> dict | None:
    """os.environ's backing dict (bytes keys) on POSIX, else None (use the public API)."""
    data = getattr(os.environ, "_data", None)
    if os.name == "posix" and os.supports_bytes_environ and isinstance(data, dict):
        return data
    return None


_ENV_DATA = _posix_environ_data()
_ENCODING = sys.getfilesystemencoding()
_DNT_KEY = DO_NOT_TRACK_ENV.encode(_ENCODING)
_SETTING_KEY = TELEMETRY_ENV.encode(_ENCODING)


def read_env(name: str) -> str | None:
    """`os.environ.get(name)` without the cost of a miss (an exception inside Mapping.get)."""
    if _ENV_DATA is None:
        return os.environ.get(name)
    value = _ENV_DATA.get(name.encode(_ENCODING, "surrogateescape"))
    return None if value is None else value.decode(_ENCODING, "surrogateescape")


def env_probe(name: str):
    """A zero-argument function returning a cheap token that changes iff `name` changes.

    The raw (undecoded) value on POSIX: for hot paths that only need to notice a change.
    """
    if _ENV_DATA is None:
        return lambda: os.environ.get(name)
    key = name.encode(_ENCODING, "surrogateescape")
    return lambda: _ENV_DATA.get(key)
