"""The sinks behind the configured one, named as `/health` names them: the sink's
kind for a single sink; `primary:<kind>`, `secondary<i>:<kind>` for the members
of a CompositeSink (its `children`, primary first)."""

from __future__ import annotations

from branchpy_telemetry.backend.sinks.base import Sink
from branchpy_telemetry.backend.sinks.shards import check_shards
from branchpy_telemetry.backend.sinks.write_retry import RetryPolicy


def sink_members(sink: Sink) -> dict[str, Sink]:
    children = getattr(sink, "children", None)
    if not children:
        return {sink.kind: sink}
    return {(f"secondary{i}:{child.kind}" if i else f"primary:{child.kind}"): child
            for i, child in enumerate(children)}


def configure_writes(sink: Sink, *, shards: int, retry_deadline_s: float) -> None:
    """Apply the write settings to every member that has SQL writes (the others have no conflicts)."""
    policy = RetryPolicy(deadline_s=retry_deadline_s)
    check_shards(shards)
    for member in sink_members(sink).values():
        configure = getattr(member, "configure_writes", None)
        if configure is not None:
            configure(shards=shards, policy=policy)
