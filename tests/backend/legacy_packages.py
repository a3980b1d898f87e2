"""The test packages as the factory made them before the event catalog (December 2026).

`fixtures/schema_v1_rows.json` holds the rows the version-1 write path stored for
packages made this way, so the migration test must feed its reference sink the
very same packages. Sinks store what they are given (the server's catalog and
fixed formats apply before a sink), so these still store as they did.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from branchpy_telemetry.client.contracts.schema import SanitizedEvent, TelemetryPackage
from branchpy_telemetry.client.contracts.timewindow import format_ts

from .conftest import BASE_TS, STATUSES, event_id_for, make_package

LEGACY_NAMES = ("analyze", "lint", "graph", "export", "open-panel", "search")


def legacy_event(i: int, *, seed: int, start: datetime, step: timedelta, sessions: int) -> SanitizedEvent:
    rnd = random.Random(seed * 1_000_003 + i)
    status = rnd.choice(STATUSES)
    fields = dict(
        event_id=event_id_for(seed, i), ts=format_ts(start + i * step),
        category=rnd.choice(("command", "command", "feature", "performance", "error")),
        source=rnd.choice(("cli", "extension", "daemon")), name=rnd.choice(LEGACY_NAMES),
        duration_ms=round(rnd.lognormvariate(4, 1.2), 3) if rnd.random() < 0.9 else None,
        status=status, session_id=f"s-{seed}-{rnd.randrange(sessions)}",
        correlation_id=f"c-{i}", attrs={"files": rnd.randrange(100), "flag_json": rnd.random() < 0.5},
    )
    if status == "error":
        code = rnd.randrange(3)
        fields.update(error_code=f"BP-E10{code}", error_hash=f"sha256:{code:064x}")
    return SanitizedEvent(**fields)


def legacy_package(n_events: int, *, seed: int, start: datetime = BASE_TS,
                   step: timedelta = timedelta(minutes=1), sessions: int = 4,
                   **package_fields) -> TelemetryPackage:
    events = [legacy_event(i, seed=seed, start=start, step=step, sessions=sessions) for i in range(n_events)]
    return make_package(events=events, **package_fields)
