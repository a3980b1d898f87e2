"""Keys: stored hashed, scopes (admin covers both), revocation, the in-process cache."""

from __future__ import annotations

import pytest

from branchpy_telemetry.backend.auth import (
    KeyAuthenticator,
    generate_key,
    hash_key,
    key_from_headers,
    scope_allows,
)
from branchpy_telemetry.backend.errors import ForbiddenError, UnauthorizedError
from branchpy_telemetry.backend.sinks.memory import MemorySink
from branchpy_telemetry.client.contracts.timewindow import utcnow


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_generated_key_is_random_and_only_its_hash_is_in_the_record():
    key, record = generate_key("ingest", "ci", utcnow())
    other, _ = generate_key("ingest", "ci", utcnow())
    assert key != other and len(key) > 40
    assert record.key_hash == hash_key(key) and key not in repr(record)
    assert key.startswith(f"bpt_{record.key_id}_")


def test_scope_matrix_admin_covers_ingest_and_read():
    assert scope_allows("ingest", "ingest") and not scope_allows("ingest", "read")
    assert scope_allows("read", "read") and not scope_allows("read", "ingest")
    assert all(scope_allows("admin", s) for s in ("ingest", "read", "admin"))
    assert not scope_allows("read", "admin") and not scope_allows("ingest", "admin")


def test_key_is_taken_from_x_api_key_or_bearer():
    assert key_from_headers({"X-API-Key": "abc"}) == "abc"
    assert key_from_headers({"Authorization": "Bearer xyz"}) == "xyz"
    assert key_from_headers({"Authorization": "bearer  xyz "}) == "xyz"
    assert key_from_headers({"Authorization": "Basic dXNlcg=="}) is None
    assert key_from_headers({}) is None


def test_authenticate_missing_unknown_wrong_scope_and_ok():
    sink = MemorySink()
    key, record = generate_key("read", None, utcnow())
    sink.add_api_key(record)
    auth = KeyAuthenticator(sink)
    with pytest.raises(UnauthorizedError):
        auth.authenticate(None, "read")
    with pytest.raises(UnauthorizedError):
        auth.authenticate(key + "x", "read")
    with pytest.raises(UnauthorizedError):
        auth.authenticate("k" * 10_000, "read")
    with pytest.raises(ForbiddenError):
        auth.authenticate(key, "ingest")
    assert auth.authenticate(key, "read").key_id == record.key_id


def test_revoked_key_stops_working_once_the_cache_entry_expires():
    sink = MemorySink()
    clock = FakeClock()
    key, record = generate_key("ingest", None, utcnow())
    sink.add_api_key(record)
    auth = KeyAuthenticator(sink, cache_seconds=10, clock=clock)
    auth.authenticate(key, "ingest")
    sink.revoke_api_key(record.key_id, utcnow())
    auth.authenticate(key, "ingest")  # still cached: documented bound on revocation delay
    clock.now += 11
    with pytest.raises(UnauthorizedError):
        auth.authenticate(key, "ingest")


def test_unknown_keys_are_remembered_by_hash_in_a_bounded_table_apart_from_known_keys():
    sink = MemorySink()
    auth = KeyAuthenticator(sink)
    for i in range(3000):
        with pytest.raises(UnauthorizedError):
            auth.authenticate(f"bpt_random_{i}", "read")
    assert auth._cache == {}
    assert 0 < len(auth._unknown) <= 1024
    assert not any("random" in digest for digest in auth._unknown)  # hashes, never the keys
