"""The governance id (DESIGN §6): a random, pseudonymous install id.

Stored in `paths.install_file` as JSON (`{"governance_id": …, "created": …}`),
created on first use, replaced by `reset_governance_id` (`purge --reset-id`).
Creation is race-free between processes: the first writer wins via a hard
link that cannot overwrite; everybody else reads the winner's id.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import msgspec
import structlog

from ..client.errors import StorageError
from ..client.paths import TelemetryPaths, ensure_private_dir
from ..client.timewindow import format_ts, utcnow

log = structlog.get_logger(__name__)


def load_or_create_governance_id(paths: TelemetryPaths) -> str:
    """The stored id, or a new one stored now (first use)."""
    existing = _read_install(paths.install_file)
    gid = existing.get("governance_id") if existing is not None else None
    if _is_uuid(gid):
        return gid
    if existing is not None:
        # Unreadable or hand-edited: a fresh pseudonym loses nothing of value.
        log.warning("identity.invalid_install_file", path=str(paths.install_file))
        return _write_new(paths, existing or {}, replace=True)
    return _write_new(paths, {}, replace=False)


def reset_governance_id(paths: TelemetryPaths) -> str:
    """Forget the current id and store a new random one; returns the new id."""
    existing = _read_install(paths.install_file) or {}
    gid = _write_new(paths, existing, replace=True)
    log.info("identity.reset")
    return gid


def _write_new(paths: TelemetryPaths, keep: dict[str, Any], *, replace: bool) -> str:
    gid = str(uuid.uuid4())
    body = dict(keep)
    body["governance_id"] = gid
    body["created"] = format_ts(utcnow())
    target = paths.install_file
    try:
        ensure_private_dir(target.parent)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(msgspec.json.encode(body))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            if replace:
                os.replace(tmp, target)
                return gid
            try:
                os.link(tmp, target)  # fails if another process created it first
            except FileExistsError:
                winner = (_read_install(target) or {}).get("governance_id")
                if _is_uuid(winner):
                    return winner
                os.replace(tmp, target)
                return gid
            return gid
        finally:
            tmp.unlink(missing_ok=True)
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


def _is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
