"""API keys: creation, hashing, lookup and scope checks (docs/http-api.md).

A key is `bpt_<key_id>_<secret>` with 256 random bits of secret. Only its
sha256 is stored. A slow password hash (bcrypt, scrypt, argon2) exists to
make guessing *low-entropy human passwords* expensive after a database
leak; a 256-bit random key cannot be guessed at any speed, so one sha256 is
as safe and keeps every request cheap. The hash found in the database is
compared with `hmac.compare_digest` (constant time). Lookups are cached in
each process; a revocation reaches every process within
`revocation_check_seconds` (see KeyAuthenticator).

Scopes: `ingest` may upload, `read` may query, `admin` may do both (and purge).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from branchpy_telemetry.backend.errors import ForbiddenError, RateLimitedError, UnauthorizedError
from branchpy_telemetry.backend.ratelimit import TokenBucketLimiter, retry_after_header
from branchpy_telemetry.backend.sinks.base import ApiKeyRecord, Sink
from branchpy_telemetry.client.contracts.timewindow import format_ts

Scope = Literal["ingest", "read", "admin"]
SCOPES: tuple[str, ...] = ("ingest", "read", "admin")
KEY_PREFIX = "bpt_"
MAX_KEY_LENGTH = 200
_CACHE_MAX = 1024

# which stored scopes satisfy a required scope
_GRANTS: dict[str, frozenset[str]] = {
    "ingest": frozenset({"ingest", "admin"}),
    "read": frozenset({"read", "admin"}),
    "admin": frozenset({"admin"}),
}


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_key(scope: Scope, label: str | None, now: datetime) -> tuple[str, ApiKeyRecord]:
    """A new random key and the record to store (which never holds the key)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    key_id = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    record = ApiKeyRecord(key_id=key_id, key_hash=hash_key(key), scope=scope, label=label,
                          created_at=format_ts(now))
    return key, record


def key_from_headers(headers) -> str | None:
    """`X-API-Key: <key>` or `Authorization: Bearer <key>`."""
    key = headers.get("X-API-Key")
    if not key:
        auth = headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer":
            key = token
    key = (key or "").strip()
    return key or None


def scope_allows(granted: str, required: str) -> bool:
    return granted in _GRANTS[required]


class KeyAuthenticator:
    """Resolves a presented key to its record, with the database queried as little as possible.

    - A known key is cached for `cache_seconds`. Every `revocation_check_seconds` one query
      reads the sink's revoked-key count; when it changed, the cache is dropped, so a key
      revoked by any process (`keys revoke`) stops working in every server process within
      about that interval.
    - An unknown key is remembered by its hash (bounded) for `cache_seconds`: repeating it
      costs no query.
    - Each client address has a bucket of failed attempts (`failures`). While it is empty
      the address gets 429 without a query, except for keys already cached, so a guessing
      client costs at most the bucket's burst in queries and does not lock out real keys.
    """

    def __init__(self, sink: Sink, *, cache_seconds: float = 10.0, revocation_check_seconds: float = 1.0,
                 failures: TokenBucketLimiter | None = None, clock: Callable[[], float] = time.monotonic):
        self._sink = sink
        self._ttl = cache_seconds
        self._revocation_check_s = revocation_check_seconds
        self._failures = failures or TokenBucketLimiter(0, 1)
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[ApiKeyRecord, float]] = {}  # hash -> (record, expiry)
        self._unknown: dict[str, float] = {}  # hash -> expiry
        self._revocations_lock = threading.Lock()
        self._revoked_count: int | None = None
        self._next_revocation_check = float("-inf")

    def authenticate(self, key: str | None, required: str, client: str = "") -> ApiKeyRecord:
        if not key:
            raise UnauthorizedError("an API key is required",
                                    hint="send X-API-Key: <key> or Authorization: Bearer <key>")
        record = self._resolve(key, client)
        if record is None or record.revoked_at is not None:
            self._failures.acquire(client)
            raise UnauthorizedError("the API key is unknown or revoked",
                                    hint="create one with: branchpy-telemetry-backend keys create --scope S")
        if not scope_allows(record.scope, required):
            raise ForbiddenError(f"this key has scope {record.scope!r}; this endpoint needs {required!r}",
                                 details={"scope": record.scope, "required": required})
        return record

    def _resolve(self, key: str, client: str) -> ApiKeyRecord | None:
        if len(key) > MAX_KEY_LENGTH:
            return None
        digest = hash_key(key)
        self._check_revocations()
        now = self._clock()
        with self._lock:
            hit = self._cache.get(digest)
            if hit is not None and hit[1] > now:
                return _matching(hit[0], digest)
            if self._unknown.get(digest, now) > now:
                return None
        wait = self._failures.peek(client)
        if wait is not None:
            retry_after = retry_after_header(wait)
            raise RateLimitedError("too many failed authentications from this address; "
                                   f"retry in {retry_after} s", details={"retry_after_s": int(retry_after)},
                                   headers={"Retry-After": retry_after})
        record = self._sink.find_api_key(digest)
        with self._lock:
            table = self._unknown if record is None else self._cache
            if len(table) >= _CACHE_MAX:
                table.clear()
            if record is None:
                self._unknown[digest] = now + self._ttl
            else:
                self._cache[digest] = (record, now + self._ttl)
        return None if record is None else _matching(record, digest)

    def _check_revocations(self) -> None:
        """Drop the cache when the sink's revoked-key count moved (one query per interval;
        while it runs, other requests go on with the cache)."""
        now = self._clock()
        if now < self._next_revocation_check or not self._revocations_lock.acquire(blocking=False):
            return
        try:
            self._next_revocation_check = now + self._revocation_check_s
            count = self._sink.revoked_key_count()
            if count != self._revoked_count:
                with self._lock:
                    self._cache.clear()
                self._revoked_count = count
        finally:
            self._revocations_lock.release()


def _matching(record: ApiKeyRecord, digest: str) -> ApiKeyRecord | None:
    if not hmac.compare_digest(record.key_hash.encode("ascii"), digest.encode("ascii")):
        return None
    return record
