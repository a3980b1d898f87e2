"""Service-level objectives: a success-rate target and a p95 latency target.

The error budget is the share of events allowed to fail (1 − success
target: 1 % for 99 %). `error_budget_remaining` is how much of it the window
left unspent (1 = untouched, 0 = all spent, below 0 = overspent);
`burn_rate` is how fast it is being spent: the observed error rate over the
allowed one (1 = exactly on budget, 2 = twice too fast). Latency targets are
per command (`serve --slo-p95-target NAME=MS`), else `--slo-p95-target-ms`,
since a 5-second analysis and a 100 ms lint have nothing to share.
"""

from __future__ import annotations

import msgspec

from branchpy_telemetry.backend.sinks.base import LatencySummary, Sink, TimeRange
from branchpy_telemetry.backend.sinks.usage_types import UsageFilter
from branchpy_telemetry.client.contracts.timewindow import format_ts


class CommandSlo(msgspec.Struct, kw_only=True):
    category: str
    name: str
    total: int  # events with a status
    errors: int
    success_rate: float | None  # None when no event reported a status
    success_met: bool
    error_budget_remaining: float
    burn_rate: float
    p95_ms: float | None
    p95_target_ms: float
    latency_met: bool


class SloReport(msgspec.Struct, kw_only=True):
    window_from: str
    window_to: str
    total: int
    errors: int
    success_rate: float | None  # None when no event in the window had a status
    success_target: float
    success_met: bool
    error_budget_remaining: float  # fraction of the budget left (1 = untouched, < 0 = overspent)
    burn_rate: float  # observed error rate / allowed error rate (1 = exactly on budget)
    p95_ms: float | None
    p95_target_ms: float
    latency_met: bool
    commands: list[CommandSlo] = []  # per command (category "command" unless filtered), most events first


def budget(total: int, errors: int, success_target: float) -> tuple[float | None, float, float]:
    """(success rate, error budget remaining, burn rate)."""
    allowed_error_rate = 1.0 - success_target
    if total:
        error_rate = errors / total
        success_rate: float | None = 1.0 - error_rate
    else:
        error_rate, success_rate = 0.0, None
    burn_rate = error_rate / allowed_error_rate
    return success_rate, round(1.0 - burn_rate, 6), round(burn_rate, 6)


def compute_slo(summary: LatencySummary, rng: TimeRange, now, success_target: float,
                p95_target_ms: float) -> SloReport:
    """Success rate vs target, error budget left and burn rate, p95 vs target."""
    success_rate, remaining, burn_rate = budget(summary.total, summary.errors, success_target)
    return SloReport(
        window_from=format_ts(rng.start) if rng.start else "",
        window_to=format_ts(rng.end or now),
        total=summary.total,
        errors=summary.errors,
        success_rate=success_rate,
        success_target=success_target,
        success_met=success_rate is None or success_rate >= success_target,
        error_budget_remaining=remaining,
        burn_rate=burn_rate,
        p95_ms=summary.p95_ms,
        p95_target_ms=p95_target_ms,
        latency_met=summary.p95_ms is None or summary.p95_ms <= p95_target_ms,
    )


def command_slos(sink: Sink, flt: UsageFilter, success_target: float, p95_targets: dict[str, float],
                 default_p95_ms: float) -> list[CommandSlo]:
    if flt.category is None:
        flt = msgspec.structs.replace(flt, category="command")
    percentiles = sink.name_percentiles(flt, (0.95,))
    out = []
    for g in sink.usage(flt, ("category", "name")):
        category, name = g.key
        (p95,) = percentiles.get((category, name), [None])
        target = p95_targets.get(name, default_p95_ms)
        success_rate, remaining, burn_rate = budget(g.with_status, g.errors, success_target)
        out.append(CommandSlo(category=category, name=name, total=g.with_status, errors=g.errors,
                              success_rate=success_rate,
                              success_met=success_rate is None or success_rate >= success_target,
                              error_budget_remaining=remaining, burn_rate=burn_rate, p95_ms=p95,
                              p95_target_ms=target, latency_met=p95 is None or p95 <= target))
    return sorted(out, key=lambda c: (-c.total, c.category, c.name))

