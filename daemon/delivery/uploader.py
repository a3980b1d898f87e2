"""Send one package file to the backend (`POST {endpoint}/upload`, docs/http-api.md).

`prepare_upload` does everything but send (reads the file once, checks the
review hash and the size cap, validates the schema, gzips): `--dry-run` stops
there. `upload_package` sends with connect/read timeouts and the policy in
`retry_policy`, and returns an `UploadOutcome`; no `requests` exception
leaves this module. Recording the receipt, keeping or quarantining the
package is the caller's job (ledger, outbox).
"""

from __future__ import annotations

import gzip
import hashlib
import random
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import requests
import structlog

from branchpy_telemetry.client.contracts.config import Config
from branchpy_telemetry.client.contracts.errors import (
    ConsentWithdrawnError,
    NotFoundError,
    PackageChangedError,
    StorageError,
)
from branchpy_telemetry.client.contracts.schema import decode_package
from branchpy_telemetry.client.contracts.version import user_agent
from branchpy_telemetry.daemon.delivery.consent_gate import hint_for, standing_blocker
from branchpy_telemetry.daemon.delivery.retry_policy import (
    Outcome,
    classify,
    is_package_fault,
    next_delay,
    parse_retry_after,
)

log = structlog.get_logger("branchpy.upload")



class UploadOutcome(msgspec.Struct, kw_only=True):
    outcome: Outcome
    status_code: int | None = None  # last HTTP status; None: refused locally or no answer
    attempts: int = 0  # requests actually sent
    receipt: str | None = None
    server_message: str | None = None  # the server's (or our local) reason, for the user
    error_code: str | None = None  # the server's error.code, or ours when refused locally
    details: Any = None  # the server's error.details (e.g. privacy pointers)
    package_id: str | None = None
    events: int = 0
    bytes: int = 0  # JSON size (what the cap applies to)
    wire_bytes: int = 0  # gzipped size on the wire
    sha256: str | None = None
    endpoint: str = ""
    retry_after: float | None = None  # the last Retry-After the server asked for
    accepted_events: int | None = None
    duplicate_events: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in ("delivered", "duplicate")

    @property
    def should_quarantine(self) -> bool:
        """Rejected because of the package itself (not the key or the URL)."""
        return self.outcome == "rejected" and is_package_fault(self.status_code)


class PreparedUpload(msgspec.Struct, kw_only=True):
    path: str
    body: bytes  # the exact JSON bytes read from the file
    gzipped: bytes
    sha256: str
    package_id: str
    events: int


class LocalRejection(Exception):
    """The package cannot be sent as it is (over the cap, not a valid package)."""

    def __init__(self, code: str, message: str, prepared_bytes: int = 0):
        super().__init__(message)
        self.code, self.message, self.bytes = code, message, prepared_bytes


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _normalize_sha(value: str) -> str:
    return value.strip().lower().removeprefix("sha256:")


def verify_unchanged(path: Path, expected_sha256: str, *, data: bytes | None = None) -> str:
    """Refuse (PackageChangedError) if `path` is not byte-for-byte what was reviewed."""
    data = read_package_file(path) if data is None else data
    actual = sha256_hex(data)
    if actual != _normalize_sha(expected_sha256):
        raise PackageChangedError(
            f"{path} changed since it was exported/previewed (sha256 {actual[:12]}…, "
            f"expected {_normalize_sha(expected_sha256)[:12]}…)",
            hint="run `branchpy telemetry preview` on it again, or export a fresh package",
        )
    return actual


def prepare_upload(path: Path, config: Config, *, expected_sha256: str | None = None) -> PreparedUpload:
    """Read once, check hash and cap, validate, gzip. Raises PackageChangedError,
    NotFoundError/StorageError (file), LocalRejection (cap, invalid package)."""
    data = read_package_file(path)
    if expected_sha256 is not None:
        verify_unchanged(path, expected_sha256, data=data)
    cap = config.max_upload_bytes
    if len(data) > cap:
        raise LocalRejection(
            "package_too_large",
            f"{path} is {len(data):,} bytes, over the upload cap of {cap:,} bytes "
            f"(telemetry.max_upload_size_mb = {config.telemetry.max_upload_size_mb:g}); not sent",
            len(data),
        )
    try:
        package = decode_package(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise LocalRejection("invalid_package", f"{path} is not a valid telemetry package: {exc}",
                             len(data)) from None
    return PreparedUpload(path=str(path), body=data, gzipped=gzip.compress(data, 6, mtime=0),
                          sha256=sha256_hex(data), package_id=package.package_id,
                          events=len(package.summary.events))


def upload_package(
    path: Path,
    config: Config,
    *,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    rng: random.Random | None = None,
    max_attempts: int = 4,
    backoff_base: float = 1.0,
    backoff_cap: float = 30.0,
    max_total_wait: float = 120.0,
    connect_timeout: float = 5.0,
    read_timeout: float = 30.0,
    expected_sha256: str | None = None,
    env: Mapping[str, str] | None = None,
) -> UploadOutcome:
    """Send one package file; retry per the policy; never raise a requests error.

    Raises only for local problems: the file (PackageChangedError,
    NotFoundError, StorageError) or withdrawn consent (ConsentWithdrawnError,
    checked in `env`, default os.environ; nothing is sent). Stops retrying after `max_attempts`
    requests, or when the next wait would push the total past
    `max_total_wait` seconds (the package stays in the outbox for the next run).
    """
    endpoint = config.telemetry.endpoint.rstrip("/")
    try:
        prepared = prepare_upload(path, config, expected_sha256=expected_sha256)
    except LocalRejection as rej:
        log.warning("upload.refused_locally", path=str(path), code=rej.code, bytes=rej.bytes)
        return UploadOutcome(outcome="rejected", error_code=rej.code, server_message=rej.message,
                             bytes=rej.bytes, endpoint=endpoint)
    return send_prepared(prepared, config, session=session, sleep=sleep, clock=clock, rng=rng,
                         max_attempts=max_attempts, backoff_base=backoff_base, backoff_cap=backoff_cap,
                         max_total_wait=max_total_wait, connect_timeout=connect_timeout,
                         read_timeout=read_timeout, env=env)


def send_prepared(prepared: PreparedUpload, config: Config, *, session: requests.Session | None = None,
                  sleep: Callable[[float], None] = time.sleep,
                  clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                  rng: random.Random | None = None, max_attempts: int = 4, backoff_base: float = 1.0,
                  backoff_cap: float = 30.0, max_total_wait: float = 120.0,
                  connect_timeout: float = 5.0, read_timeout: float = 30.0,
                  env: Mapping[str, str] | None = None) -> UploadOutcome:
    """Send an already prepared package (see `upload_package`)."""
    if (blocker := standing_blocker(config, env)) is not None:  # the last gate before the network
        raise ConsentWithdrawnError(f"telemetry consent is withdrawn by {blocker}: nothing was sent",
                                    hint=hint_for(blocker), details={"blocked_by": blocker})
    endpoint = config.telemetry.endpoint.rstrip("/")
    url = endpoint + "/upload"
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip",
               "User-Agent": user_agent()}
    if config.telemetry.api_key:
        headers["X-API-Key"] = config.telemetry.api_key
    result = UploadOutcome(outcome="retry", package_id=prepared.package_id, events=prepared.events,
                           bytes=len(prepared.body), wire_bytes=len(prepared.gzipped),
                           sha256=prepared.sha256, endpoint=endpoint)
    own_session = session is None
    session = session or requests.Session()
    waited = 0.0
    try:
        for attempt in range(1, max_attempts + 1):
            result.attempts = attempt
            _attempt(session, url, prepared.gzipped, headers, (connect_timeout, read_timeout), clock, result)
            log.info("upload.attempt", package_id=prepared.package_id, attempt=attempt,
                     status=result.status_code, outcome=result.outcome, bytes=result.wire_bytes)
            if result.outcome not in ("retry", "throttled") or attempt == max_attempts:
                break
            delay = next_delay(result.outcome, attempt, retry_after=result.retry_after,
                               base=backoff_base, cap=backoff_cap, rng=rng)
            if waited + delay > max_total_wait:
                log.info("upload.give_up_for_now", package_id=prepared.package_id, next_delay=delay)
                break
            sleep(delay)
            waited += delay
    finally:
        if own_session:
            session.close()
    return result


def _attempt(session, url, body, headers, timeout, clock, result: UploadOutcome) -> None:
    """One request; fills `result` in place."""
    result.retry_after = None
    try:
        response = session.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
    except requests.exceptions.RequestException as exc:
        result.status_code = None
        result.outcome = classify(None, exc)
        result.error_code = "timeout" if isinstance(exc, requests.exceptions.Timeout) else "network_error"
        result.server_message = f"cannot reach {url}: {network_reason(exc)}"
        result.details = None
        return
    with response:
        payload = _json_or_none(response)
        duplicate = bool(isinstance(payload, dict) and payload.get("duplicate") is True)
        result.status_code = response.status_code
        result.outcome = classify(response.status_code, duplicate=duplicate)
        result.retry_after = parse_retry_after(response.headers.get("Retry-After"), clock())
        if result.outcome in ("delivered", "duplicate") and isinstance(payload, dict):
            result.receipt = payload.get("receipt")
            result.accepted_events = payload.get("accepted_events")
            result.duplicate_events = payload.get("duplicate_events")
            result.server_message = result.error_code = result.details = None
            return
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict):
            result.error_code = str(error.get("code") or f"http_{response.status_code}")
            result.server_message = str(error.get("message") or response.reason or "")
            result.details = error.get("details")
        else:
            result.error_code = f"http_{response.status_code}"
            text = response.text.strip()[:500] if response.content else ""
            result.server_message = f"HTTP {response.status_code} {response.reason or ''}".strip() + (
                f": {text}" if text else "")
            result.details = None


def _json_or_none(response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def network_reason(exc: requests.exceptions.RequestException) -> str:
    """The cause in a few words (`Connection refused`, `timed out`, `Name or service not known`)
    instead of urllib3's retry wrapper text; the full text when no cause can be read."""
    if isinstance(exc, requests.exceptions.Timeout):
        return "timed out"
    inner: BaseException = exc
    for _ in range(8):  # requests -> urllib3 MaxRetryError -> its reason -> the socket error
        nested = getattr(inner, "reason", None)
        if not isinstance(nested, BaseException) and inner.args and isinstance(inner.args[0], BaseException):
            nested = inner.args[0]
        if not isinstance(nested, BaseException):
            break
        inner = nested
    found = _ERRNO_TEXT.search(str(inner))
    if found:
        return found.group(1).strip()
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror
    return _short(exc)


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:300] + "…"


def read_package_file(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such package file",
                            hint="export one with `branchpy telemetry export --output FILE`") from None
    except IsADirectoryError:
        raise NotFoundError(f"{path} is a directory, not a package file") from None
    except OSError as exc:
        raise StorageError(f"{path}: cannot read: {exc.strerror}") from None
