"""Per-package aggregates (DESIGN §6) with an exact upper bound on their JSON size.

`PartAggregates` collects, for the sanitized events of one package part:
`performance_metrics` (durations per event name: count, total, mean, p50,
p95, max — exact, the part is bounded by the size cap), `usage_statistics`
(counts by command, feature, category, source, status), `errors` (grouped by
error hash, code and name), the distinct `correlation_ids`, the first/last
event time and the redaction counts.

`bound` is an upper bound on how many bytes those aggregates add to the
package's skeleton (see `package_writer.skeleton_size`). It is kept up to date
incrementally (new keys only) so the exporter can split a window into parts
without ever re-encoding: every number is reserved at the widest width
msgspec can write (`WIDE_FLOAT`, `WIDE_INT`).

Percentiles are nearest-rank: p-th = sorted[ceil(p/100 * n) - 1].
"""

from __future__ import annotations

import math

import msgspec

from ..client.schema import CommandPerformance, ErrorSample, SanitizedEvent, UsageStatistics

WIDE_FLOAT = -2.2250738585072014e-308  # the widest JSON number msgspec writes (24 bytes)
WIDE_INT = -(2**63)  # 20 bytes

_enc = msgspec.json.Encoder()


def json_len(value: str | None) -> int:
    """Bytes `value` takes in JSON, quotes included (`null` for None)."""
    if value is None:
        return 4
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return len(value) + 2
    return len(_enc.encode(value))


# Cost of one map entry, excluding the key's own JSON length: `:` value `,`
_COUNT_ENTRY = 1 + len(_enc.encode(WIDE_INT)) + 1
_PERF_ENTRY = 1 + len(_enc.encode(CommandPerformance(
    count=WIDE_INT, total_ms=WIDE_FLOAT, mean_ms=WIDE_FLOAT, p50_ms=WIDE_FLOAT, p95_ms=WIDE_FLOAT,
    max_ms=WIDE_FLOAT))) + 1
# One error sample with its six strings empty (`""`, 2 bytes each) plus `,`;
# the strings' JSON lengths are added per sample.
_ERROR_ENTRY = len(_enc.encode(ErrorSample(
    error_hash="", error_code="", error_type="", name="", count=WIDE_INT, first_seen="",
    last_seen=""))) - 6 * 2 + 1


class PartAggregates:
    """Aggregates of one package part. Call `cost()` (optional) then `add()`."""

    __slots__ = ("durations", "commands", "features", "categories", "sources", "statuses", "errors",
                 "correlation_ids", "redactions", "first_ts", "last_ts", "ts_width", "_static")

    def __init__(self) -> None:
        self.durations: dict[str, list[float]] = {}
        self.commands: dict[str, int] = {}
        self.features: dict[str, int] = {}
        self.categories: dict[str, int] = {}
        self.sources: dict[str, int] = {}
        self.statuses: dict[str, int] = {}
        # (error_hash, error_code, name) -> [count, first_seen, last_seen, error_type]
        self.errors: dict[tuple[str, str | None, str], list] = {}
        self.correlation_ids: set[str] = set()
        self.redactions: dict[str, int] = {}
        self.first_ts: str | None = None
        self.last_ts: str | None = None
        self.ts_width = 4  # JSON width reserved per timestamp (first/last event, first/last seen)
        self._static = 0  # bound of everything but the timestamps

    @property
    def bound(self) -> int:
        return self._static + (2 * len(self.errors) + 2) * self.ts_width

    def cost(self, ev: SanitizedEvent, error_type: str | None, rules: dict[str, int] | None) -> int:
        """Exactly how much `bound` grows if `ev` is added (without adding it)."""
        name, cat = ev.name, ev.category
        c = 0
        if ev.duration_ms is not None and name not in self.durations:
            c += _PERF_ENTRY + json_len(name)
        if cat == "command" and name not in self.commands:
            c += _COUNT_ENTRY + json_len(name)
        elif cat == "feature" and name not in self.features:
            c += _COUNT_ENTRY + json_len(name)
        if cat not in self.categories:
            c += _COUNT_ENTRY + json_len(cat)
        if ev.source not in self.sources:
            c += _COUNT_ENTRY + json_len(ev.source)
        if ev.status is not None and ev.status not in self.statuses:
            c += _COUNT_ENTRY + json_len(ev.status)
        if ev.correlation_id is not None and ev.correlation_id not in self.correlation_ids:
            c += json_len(ev.correlation_id) + 1
        if rules:
            c += sum(_COUNT_ENTRY + json_len(r) for r in rules if r not in self.redactions)
        width = max(self.ts_width, json_len(ev.ts))
        samples = len(self.errors)
        if ev.error_hash is not None:
            sample = self.errors.get((ev.error_hash, ev.error_code, name))
            if sample is None:
                c += _ERROR_ENTRY + json_len(ev.error_hash) + json_len(ev.error_code) + json_len(name)
                c += json_len(error_type) + 2 * width
            elif sample[3] is None and error_type is not None:
                c += json_len(error_type) - 4
        c += (2 * samples + 2) * (width - self.ts_width)
        return c

    def add(self, ev: SanitizedEvent, error_type: str | None, rules: dict[str, int] | None) -> None:
        name, cat, ts = ev.name, ev.category, ev.ts
        if len(ts) + 2 > self.ts_width:
            self.ts_width = max(self.ts_width, json_len(ts))
        if self.first_ts is None or ts < self.first_ts:
            self.first_ts = ts
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts
        d = ev.duration_ms
        if d is not None:
            lst = self.durations.get(name)
            if lst is None:
                self.durations[name] = [d]
                self._static += _PERF_ENTRY + json_len(name)
            else:
                lst.append(d)
        if cat == "command":
            self._count(self.commands, name)
        elif cat == "feature":
            self._count(self.features, name)
        self._count(self.categories, cat)
        self._count(self.sources, ev.source)
        if ev.status is not None:
            self._count(self.statuses, ev.status)
        cid = ev.correlation_id
        if cid is not None and cid not in self.correlation_ids:
            self.correlation_ids.add(cid)
            self._static += json_len(cid) + 1
        if rules:
            for rule, n in rules.items():
                self._count(self.redactions, rule, n)
        if ev.error_hash is not None:
            self._add_error(ev, error_type)

    def _count(self, table: dict[str, int], key: str, n: int = 1) -> None:
        old = table.get(key)
        if old is None:
            table[key] = n
            self._static += _COUNT_ENTRY + json_len(key)
        else:
            table[key] = old + n

    def _add_error(self, ev: SanitizedEvent, error_type: str | None) -> None:
        key = (ev.error_hash, ev.error_code, ev.name)
        sample = self.errors.get(key)
        if sample is None:
            self.errors[key] = [1, ev.ts, ev.ts, error_type]
            self._static += (_ERROR_ENTRY + json_len(ev.error_hash) + json_len(ev.error_code)
                             + json_len(ev.name) + json_len(error_type))
            return
        sample[0] += 1
        if ev.ts < sample[1]:
            sample[1] = ev.ts
        if ev.ts > sample[2]:
            sample[2] = ev.ts
        if sample[3] is None and error_type is not None:
            # the same hash means the same type; keep the bound exact anyway
            sample[3] = error_type
            self._static += json_len(error_type) - 4

    # --- results -----------------------------------------------------------------
    def performance_metrics(self) -> dict[str, CommandPerformance]:
        out = {}
        for name in sorted(self.durations):
            values = sorted(self.durations[name])
            n = len(values)
            total = math.fsum(values)
            out[name] = CommandPerformance(
                count=n, total_ms=total, mean_ms=total / n, p50_ms=nearest_rank(values, 50),
                p95_ms=nearest_rank(values, 95), max_ms=values[-1])
        return out

    def usage_statistics(self) -> UsageStatistics:
        return UsageStatistics(
            commands=_sorted(self.commands), features=_sorted(self.features),
            categories=_sorted(self.categories), sources=_sorted(self.sources),
            statuses=_sorted(self.statuses))

    def error_samples(self) -> list[ErrorSample]:
        samples = [
            ErrorSample(error_hash=h, error_code=code, error_type=etype, name=name, count=count,
                        first_seen=first, last_seen=last)
            for (h, code, name), (count, first, last, etype) in self.errors.items()
        ]
        samples.sort(key=lambda s: (-s.count, s.first_seen, s.error_hash, s.name))
        return samples

    def sorted_correlation_ids(self) -> list[str]:
        return sorted(self.correlation_ids)


def nearest_rank(sorted_values: list[float], p: int) -> float:
    """The p-th percentile (nearest-rank) of an ascending, non-empty list."""
    n = len(sorted_values)
    return sorted_values[max(0, (p * n + 99) // 100 - 1)]


def _sorted(table: dict[str, int]) -> dict[str, int]:
    return dict(sorted(table.items()))
