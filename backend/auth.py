"""API keys: creation, hashing, lookup and scope checks (DESIGN §10).

A key is `bpt_<key_id>_<secret>` with 256 random bits of secret. Only its
sha256 is stored. A slow password hash (bcrypt, scrypt, argon2) exists to
make guessing *low-entropy human passwords* expensive after a database
leak; a 256-bit random key cannot be guessed at any speed, so one sha256 is
as safe and keeps every request cheap. The hash found in the database is
compared with `hmac.compare_digest` (constant time), and lookups are cached
in-process for `auth_cache_seconds` (so a revoked key stops working within
that time in a server that already saw it).

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

from branchpy_telemetry.client.timewindow import format_ts

from .errors import ForbiddenError, UnauthorizedError
from .sinks.base import ApiKeyRecord, Sink

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
    """Resolves a presented key to its record, with a small TTL cache."""

    def __init__(self, sink: Sink, *, cache_seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        self._sink = sink
        self._ttl = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[ApiKeyRecord, float]] = {}

    def authenticate(self, key: str | None, required: str) -> ApiKeyRecord:
        if not key:
            raise UnauthorizedError("an API key is required",
                                    hint="send X-API-Key: <key> or Authorization: Bearer <key>")
        record = self._lookup(key) if len(key) <= MAX_KEY_LENGTH else None
        if record is None or record.revoked_at is not None:
            raise UnauthorizedError("the API key is unknown or revoked",
                                    hint="create one with: branchpy-telemetry-backend keys create --scope S")
        if not scope_allows(record.scope, required):
            raise ForbiddenError(f"this key has scope {record.scope!r}; this endpoint needs {required!r}",
                                 details={"scope": record.scope, "required": required})
        return record

    def _lookup(self, key: str) -> ApiKeyRecord | None:
        digest = hash_key(key)
        now = self._clock()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            record = hit[0]
        else:
            record = self._sink.find_api_key(digest)
            if record is None:
                return None  # misses are not cached: random garbage must not fill memory
            with self._lock:
                if len(self._cache) >= _CACHE_MAX:
                    self._cache.clear()
                self._cache[digest] = (record, now + self._ttl)
        if not hmac.compare_digest(record.key_hash.encode("ascii"), digest.encode("ascii")):
            return None
        return record
