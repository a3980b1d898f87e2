"""Per-package aggregates (docs/package-schema.md) with an exact upper bound on their JSON size.

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
from collections import Counter
from operator import attrgetter
from typing import Any

import msgspec

from branchpy_telemetry.client.contracts.schema import (
    CommandPerformance,
    ErrorSample,
    SanitizedEvent,
    UsageStatistics,
)

WIDE_FLOAT = -2.2250738585072014e-308  # the widest JSON number msgspec writes (24 bytes)
WIDE_INT = -(2**63)  # 20 bytes
WIRE_TS_WIDTH = 26  # JSON width of a wire-form timestamp: `"2026-11-28T01:02:03.456Z"`

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


try:  # the optional compiled form of `gather_in_python`; tests prove both gather the same
    from branchpy_telemetry.daemon.export._export_scan import gather
except ImportError:  # pragma: no cover - only without a C compiler at install time
    gather = None  # set to gather_in_python below

_TS, _NAME, _DURATION = attrgetter("ts"), attrgetter("name"), attrgetter("duration_ms")
_COMBO = attrgetter("category", "name", "source", "status")
_CID = attrgetter("correlation_id")


class CleanBatch:
    """What `PartAggregates.add_clean_many` needs of a list of events (EventRecords or
    SanitizedEvents with wire-form timestamps), gathered once with C-level maps."""

    __slots__ = ("first", "last", "durations", "combos", "cids")

    def __init__(self, evs: list) -> None:
        self.first, self.last, self.durations, self.combos, self.cids = gather(evs)


def gather_in_python(evs: list) -> tuple[str | None, str | None, dict, dict, set]:
    """(earliest and latest timestamp, durations by name in event order, (category, name, source,
    status) counts, correlation ids); `_export_scan.gather` does the same in one pass."""
    tss = list(map(_TS, evs))
    durations: dict[str, list[float]] = {}
    for name, d in zip(map(_NAME, evs), map(_DURATION, evs), strict=True):
        if d is not None:
            values = durations.get(name)
            if values is None:
                durations[name] = [d]
            else:
                values.append(d)
    cids = set(map(_CID, evs))
    cids.discard(None)
    return (min(tss) if tss else None, max(tss) if tss else None, durations, Counter(map(_COMBO, evs)),
            cids)


if gather is None:
    gather = gather_in_python


class PartAggregates:
    """Aggregates of one package part. Call `cost()` (optional) then `add()`.

    Usage counts are kept per (category, name, source, status) combination —
    one dict operation per event — and split into the five tables at the end.
    """

    __slots__ = ("durations", "combos", "commands", "features",
                 "categories", "sources", "statuses", "errors", "correlation_ids", "redactions", "_first",
                 "_last", "ts_width", "bound")

    def __init__(self) -> None:
        self.durations: dict[str, list[float]] = {}  # name -> durations (sorted when the part is written)
        # (category, name, source, status) -> [count]: a list, so counting hashes the key once
        self.combos: dict[tuple[str, str, str, str | None], list[int]] = {}
        # keys seen so far per usage table (their counts come from `combos`)
        self.commands: set[str] = set()
        self.features: set[str] = set()
        self.categories: set[str] = set()
        self.sources: set[str] = set()
        self.statuses: set[str] = set()
        # (error_hash, error_code, name) -> [count, first_seen, last_seen, error_type]
        self.errors: dict[tuple[str, str | None, str], list] = {}
        self.correlation_ids: set[str] = set()
        self.redactions: dict[str, int] = {}
        self._first = "\U0010ffff"
        self._last = ""
        self.ts_width = 4  # JSON width reserved per timestamp (first/last event, first/last seen)
        # upper bound of the bytes these aggregates add to the skeleton; timestamps
        # are reserved at `ts_width` each: 2 for the summary + 2 per error sample.
        self.bound = 2 * self.ts_width

    @property
    def first_ts(self) -> str | None:
        return self._first if self._last else None

    @property
    def last_ts(self) -> str | None:
        return self._last or None

    def cost(self, ev: SanitizedEvent, error_type: str | None, rules: dict[str, int] | None) -> int:
        """Exactly how much `bound` grows if `ev` is added (without adding it)."""
        name, cat = ev.name, ev.category
        c = 0
        if ev.duration_ms is not None and name not in self.durations:
            c += _PERF_ENTRY + json_len(name)
        if (cat, name, ev.source, ev.status) not in self.combos:
            c += self._combo_cost(cat, name, ev.source, ev.status)
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

    def _combo_cost(self, cat: str, name: str, source: str, status: str | None) -> int:
        c = 0
        if cat == "command" and name not in self.commands:
            c += _COUNT_ENTRY + json_len(name)
        elif cat == "feature" and name not in self.features:
            c += _COUNT_ENTRY + json_len(name)
        if cat not in self.categories:
            c += _COUNT_ENTRY + json_len(cat)
        if source not in self.sources:
            c += _COUNT_ENTRY + json_len(source)
        if status is not None and status not in self.statuses:
            c += _COUNT_ENTRY + json_len(status)
        return c

    def add(self, ev: SanitizedEvent, error_type: str | None, rules: dict[str, int] | None) -> None:
        ts = ev.ts
        if len(ts) + 2 > self.ts_width or not (ts.isascii() and ts.isprintable()) or '"' in ts or "\\" in ts:
            self._widen(ts)  # json_len(ts) may exceed len(ts) + 2 (escapes, UTF-8)
        self.add_clean(ev)  # window, durations, usage combos, correlation ids (its own widen is then a no-op)
        self.add_rest(ev, error_type, rules)

    def add_rest(self, ev: SanitizedEvent, error_type: str | None, rules: dict[str, int] | None) -> None:
        """What `add` does beyond `add_clean`: redaction counts and the error sample."""
        if rules:
            self.add_redactions(rules)
        if ev.error_hash is not None:
            self._add_error(ev, error_type)

    def redactions_cost(self, rules: dict[str, int]) -> int:
        """How much `bound` grows if `rules` are counted (new rule names only)."""
        return sum(_COUNT_ENTRY + json_len(r) for r in rules if r not in self.redactions)

    def add_redactions(self, rules: dict[str, int]) -> None:
        """Count removals (also those of an event dropped whole, which adds nothing else)."""
        for rule, k in rules.items():
            old = self.redactions.get(rule)
            if old is None:
                self.redactions[rule] = k
                self.bound += _COUNT_ENTRY + json_len(rule)
            else:
                self.redactions[rule] = old + k

    def add_clean(self, ev: Any) -> None:
        """The counting every event gets (`add` calls it too); on its own it is
        `add(ev, None, None)` for an event with no error hash and a timestamp
        in the wire form (`client.contracts.declared.is_clean_record` guarantees both):
        the exporter passes such EventRecords here as they are."""
        ts = ev.ts
        if ts > self._last:
            self._last = ts
        if ts < self._first:
            self._first = ts
        if self.ts_width < WIRE_TS_WIDTH:
            self._widen(ts)
        name = ev.name
        d = ev.duration_ms
        if d is not None:
            values = self.durations.get(name)
            if values is None:
                self.durations[name] = [d]
                self.bound += _PERF_ENTRY + json_len(name)
            else:
                values.append(d)
        key = (ev.category, name, ev.source, ev.status)
        count = self.combos.get(key)
        if count is None:
            self._new_combo(key)
        else:
            count[0] += 1
        cid = ev.correlation_id
        if cid is not None and cid not in self.correlation_ids:
            self.correlation_ids.add(cid)
            self.bound += json_len(cid) + 1

    def growth_clean_many(self, batch: CleanBatch) -> int:
        """Exactly how much `bound` grows if `add_clean_many(batch)` runs (events with no error
        hash and wire-form timestamps)."""
        c = (2 * len(self.errors) + 2) * max(0, WIRE_TS_WIDTH - self.ts_width)
        for name in batch.durations.keys() - self.durations.keys():
            c += _PERF_ENTRY + json_len(name)
        commands, features = set(self.commands), set(self.features)
        categories, sources, statuses = set(self.categories), set(self.sources), set(self.statuses)
        for cat, name, source, status in batch.combos.keys() - self.combos.keys():
            if cat == "command" and name not in commands:
                c += _COUNT_ENTRY + json_len(name)
                commands.add(name)
            elif cat == "feature" and name not in features:
                c += _COUNT_ENTRY + json_len(name)
                features.add(name)
            for value, seen in ((cat, categories), (source, sources), (status, statuses)):
                if value is not None and value not in seen:
                    c += _COUNT_ENTRY + json_len(value)
                    seen.add(value)
        for cid in batch.cids - self.correlation_ids:
            c += json_len(cid) + 1
        return c

    def add_clean_many(self, batch: CleanBatch) -> None:
        """`add_clean` of every event of `batch`, in bulk."""
        first, last = batch.first, batch.last
        if first is None:
            return
        if last > self._last:
            self._last = last
        if first < self._first:
            self._first = first
        if self.ts_width < WIRE_TS_WIDTH:
            self._widen(first)
        durations = self.durations
        for name, values in batch.durations.items():
            mine = durations.get(name)
            if mine is None:
                durations[name] = values
                self.bound += _PERF_ENTRY + json_len(name)
            else:
                mine += values
        combos = self.combos
        for key, n in batch.combos.items():
            count = combos.get(key)
            if count is None:
                self._new_combo(key)
                combos[key][0] = n
            else:
                count[0] += n
        for cid in batch.cids - self.correlation_ids:
            self.correlation_ids.add(cid)
            self.bound += json_len(cid) + 1

    def rest_bound(self, ev: SanitizedEvent, error_type: str | None, rules: dict[str, int] | None) -> int:
        """An upper bound on what `add_rest(ev, …)` adds to `bound` (exact for one event alone)."""
        c = self.redactions_cost(rules) if rules else 0
        if ev.error_hash is not None and (ev.error_hash, ev.error_code, ev.name) not in self.errors:
            c += (_ERROR_ENTRY + json_len(ev.error_hash) + json_len(ev.error_code) + json_len(ev.name)
                  + json_len(error_type) + 2 * max(self.ts_width, WIRE_TS_WIDTH))
        elif ev.error_hash is not None and error_type is not None:
            c += json_len(error_type)
        return c

    def _widen(self, ts: str) -> None:
        width = max(self.ts_width, json_len(ts))
        self.bound += (2 * len(self.errors) + 2) * (width - self.ts_width)
        self.ts_width = width

    def _new_combo(self, key: tuple[str, str, str, str | None]) -> None:
        cat, name, source, status = key
        self.bound += self._combo_cost(cat, name, source, status)
        self.combos[key] = [1]
        if cat == "command":
            self.commands.add(name)
        elif cat == "feature":
            self.features.add(name)
        self.categories.add(cat)
        self.sources.add(source)
        if status is not None:
            self.statuses.add(status)

    def _add_error(self, ev: SanitizedEvent, error_type: str | None) -> None:
        key = (ev.error_hash, ev.error_code, ev.name)
        sample = self.errors.get(key)
        if sample is None:
            self.errors[key] = [1, ev.ts, ev.ts, error_type]
            self.bound += (_ERROR_ENTRY + json_len(ev.error_hash) + json_len(ev.error_code)
                           + json_len(ev.name) + json_len(error_type) + 2 * self.ts_width)
            return
        sample[0] += 1
        if ev.ts < sample[1]:
            sample[1] = ev.ts
        if ev.ts > sample[2]:
            sample[2] = ev.ts
        if sample[3] is None and error_type is not None:
            # the same hash means the same type; keep the bound exact anyway
            sample[3] = error_type
            self.bound += json_len(error_type) - 4

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
        commands: dict[str, int] = {}
        features: dict[str, int] = {}
        categories: dict[str, int] = {}
        sources: dict[str, int] = {}
        statuses: dict[str, int] = {}
        for (cat, name, source, status), (n,) in self.combos.items():
            if cat == "command":
                commands[name] = commands.get(name, 0) + n
            elif cat == "feature":
                features[name] = features.get(name, 0) + n
            categories[cat] = categories.get(cat, 0) + n
            sources[source] = sources.get(source, 0) + n
            if status is not None:
                statuses[status] = statuses.get(status, 0) + n
        return UsageStatistics(
            commands=_sorted(commands), features=_sorted(features), categories=_sorted(categories),
            sources=_sorted(sources), statuses=_sorted(statuses))

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
