"""The install's identity: the governance id and the id key.

The governance id is a random, pseudonymous install id sent in every package.
The id key (32 random bytes, never sent) keys the hashes that replace
caller-supplied session and correlation ids of another form
(`fixed_formats.keyed_ref_id`): the same id keeps grouping its events, and
nobody without the key can test a guess against the hash.

Both live in `paths.install_file` as JSON (`{"governance_id", "id_key", "created"}`,
mode 0600), created on first use and replaced together by
`reset_governance_id` (`purge --reset-id`: a new pseudonym must not be
linkable to the old one). Creation is race-free between processes: the first
writer wins via a hard link that cannot overwrite; everybody else reads the
winner's.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import msgspec
import structlog

from branchpy_telemetry.client.contracts.errors import StorageError
from branchpy_telemetry.client.contracts.paths import TelemetryPaths, ensure_private_dir
from branchpy_telemetry.client.contracts.timewindow import format_ts, utcnow
from branchpy_telemetry.client.infra.atomic_write import AtomicFile

log = structlog.get_logger(__name__)


def load_or_create_governance_id(paths: TelemetryPaths) -> str:
    """The stored id, or a new one stored now (first use)."""
    return load_or_create_identity(paths)[0]


def load_or_create_id_key(paths: TelemetryPaths) -> bytes:
    """The install's secret key for keyed id hashes (created with the governance id)."""
    return bytes.fromhex(load_or_create_identity(paths)[1])


def load_or_create_identity(paths: TelemetryPaths) -> tuple[str, str]:
    """(governance id, id key as hex), creating what is missing."""
    existing = _read_install(paths.install_file)
    if existing is None:
        return _write_new(paths, {}, replace=False)
    gid, key = existing.get("governance_id"), existing.get("id_key")
    if _is_uuid(gid) and _is_key(key):
        return gid, key
    if _is_uuid(gid):  # written by an earlier version: add the key, keep the pseudonym
        return _write_new(paths, existing, replace=True, keep_id=True)
    # Unreadable or hand-edited: a fresh pseudonym loses nothing of value.
    log.warning("identity.invalid_install_file", path=str(paths.install_file))
    return _write_new(paths, existing or {}, replace=True)


def reset_governance_id(paths: TelemetryPaths) -> str:
    """Forget the current id and key, store new random ones; returns the new id."""
    existing = _read_install(paths.install_file) or {}
    gid, _ = _write_new(paths, existing, replace=True)
    log.info("identity.reset")
    return gid


def _write_new(paths: TelemetryPaths, keep: dict[str, Any], *, replace: bool,
               keep_id: bool = False) -> tuple[str, str]:
    body = dict(keep)
    if not keep_id:
        body["governance_id"] = str(uuid.uuid4())
        body["created"] = format_ts(utcnow())
    body["id_key"] = os.urandom(32).hex()
    gid, key = body["governance_id"], body["id_key"]
    target = paths.install_file
    try:
        ensure_private_dir(target.parent)
        file = AtomicFile(target)
        try:
            file.write(msgspec.json.encode(body))
            if replace:
                file.commit()
                return gid, key
            if file.commit_new():  # the first writer wins: a hard link never overwrites
                return gid, key
            winner = _read_install(target) or {}
            if _is_uuid(winner.get("governance_id")) and _is_key(winner.get("id_key")):
                return winner["governance_id"], winner["id_key"]
            file.commit()
            return gid, key
        finally:
            file.discard()
    except OSError as exc:
        raise StorageError(f"cannot store the governance id in {target}: {exc.strerror}",
                           hint="check that the telemetry state folder is writable") from None


def _read_install(path: Path) -> dict[str, Any] | None:
    """None when the file does not exist; {} when it exists but is unusable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        body = msgspec.json.decode(data)
    except msgspec.DecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def _is_key(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
