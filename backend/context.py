"""What every request handler needs: settings, the sink, auth and limiters.

One `BackendContext` per app, kept in `app.extensions`; handlers fetch it
with `current_context()`. `access.require_key` calls `ctx.authorize(scope, …)`
before every view that is not public.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import structlog
from flask import Response, current_app, g, request

from branchpy_telemetry.backend.auth import KeyAuthenticator, key_from_headers
from branchpy_telemetry.backend.errors import RateLimitedError
from branchpy_telemetry.backend.health_probe import HealthProbe
from branchpy_telemetry.backend.ratelimit import TokenBucketLimiter, retry_after_header
from branchpy_telemetry.backend.settings import BackendSettings
from branchpy_telemetry.backend.sinks.base import ApiKeyRecord, Sink
from branchpy_telemetry.client.contracts.catalog import Catalog, load_catalog

EXTENSION_NAME = "branchpy_telemetry"
_encoder = msgspec.json.Encoder()


@dataclass
class BackendContext:
    settings: BackendSettings
    sink: Sink
    authenticator: KeyAuthenticator
    upload_limiter: TokenBucketLimiter
    query_limiter: TokenBucketLimiter
    catalog: Catalog  # what may be stored; undeclared data in an upload is dropped and counted
    health_probe: HealthProbe

    @classmethod
    def build(cls, settings: BackendSettings, sink: Sink) -> BackendContext:
        return cls(
            settings=settings,
            sink=sink,
            catalog=load_catalog(settings.catalog),
            authenticator=KeyAuthenticator(
                sink, cache_seconds=settings.auth_cache_seconds,
                revocation_check_seconds=settings.revocation_check_seconds,
                failures=TokenBucketLimiter(settings.auth_failure_rate_per_s, settings.auth_failure_burst,
                                            max_buckets=settings.auth_failure_addresses)),
            upload_limiter=TokenBucketLimiter(settings.upload_rate_per_s, settings.upload_burst),
            query_limiter=TokenBucketLimiter(settings.query_rate_per_s, settings.query_burst),
            health_probe=HealthProbe(sink, settings.health_timeout_s),
        )

    def authorize(self, scope: str, limiter: TokenBucketLimiter) -> ApiKeyRecord:
        """401/403 for the key, then 429 when its bucket is empty."""
        record = self.authenticator.authenticate(key_from_headers(request.headers), scope,
                                                 client=request.remote_addr or "")
        g.key_id = record.key_id
        structlog.contextvars.bind_contextvars(key_id=record.key_id)
        wait = limiter.acquire(record.key_id)
        if wait is not None:
            retry_after = retry_after_header(wait)
            raise RateLimitedError(f"too many requests for this key; retry in {retry_after} s",
                                   details={"retry_after_s": int(retry_after)},
                                   headers={"Retry-After": retry_after})
        return record


def current_context() -> BackendContext:
    return current_app.extensions[EXTENSION_NAME]


def respond(payload: object, status: int = 200) -> Response:
    """Encode a Struct / list / dict with msgspec as the JSON response."""
    return Response(_encoder.encode(payload), status=status, mimetype="application/json")
