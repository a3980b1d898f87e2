"""The backend's counters in the Prometheus text exposition format (0.0.4).

What an operator scrapes from every `serve` instance (`GET /api/telemetry/metrics`,
a read or admin key): per sink, its write transactions — committed, rolled
back by a concurrent writer (by cause: a Galera certification conflict or a
deadlock, a lock wait timeout, a duplicate-key race, a node not ready) and
given up at the retry deadline (each one an upload answered 503) — plus the
write settings in force. Counters are per process and start at zero; the
series an alert needs (uploads' conflicts by cause, their give-ups) are
always present.
"""

from __future__ import annotations

from branchpy_telemetry.backend.sinks.base import Sink
from branchpy_telemetry.backend.sinks.members import sink_members
from branchpy_telemetry.backend.sinks.write_retry import CAUSES

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ALWAYS_SHOWN_OP = "store_package"

FAMILIES = (  # name, type, help
    ("branchpy_sink_write_commits_total", "counter", "Write transactions committed, by operation."),
    ("branchpy_sink_write_conflicts_total", "counter",
     "Write transaction attempts rolled back because of a concurrent writer, by operation and cause "
     "(conflict: MariaDB 1213, a Galera certification conflict or a deadlock; lock_wait_timeout: 1205; "
     "duplicate_key_race: 1062; node_not_ready: 1047). Each one is retried or counted as exhausted."),
    ("branchpy_sink_write_retries_exhausted_total", "counter",
     "Writes given up at the retry deadline (answered 503 sink_busy with Retry-After)."),
    ("branchpy_sink_write_retry_wait_seconds_total", "counter", "Time spent in backoff before retries."),
    ("branchpy_sink_write_shards", "gauge", "Shards this instance spreads each upload's aggregates over."),
    ("branchpy_sink_write_retry_deadline_seconds", "gauge", "How long a conflicting write is retried."),
)


def render_metrics(sink: Sink) -> str:
    samples: dict[str, list[str]] = {name: [] for name, _, _ in FAMILIES}
    for name, member in sink_members(sink).items():
        retrier = getattr(member, "write_retrier", None)
        if retrier is None:
            continue  # a sink without SQL transactions (memory) has nothing to count
        stats = retrier.stats.snapshot()
        commits = {ALWAYS_SHOWN_OP: 0, **stats["commits"]}
        conflicts = {**{(ALWAYS_SHOWN_OP, cause): 0 for cause in CAUSES}, **stats["conflicts"]}
        exhausted = {ALWAYS_SHOWN_OP: 0, **stats["exhausted"]}
        for op, n in sorted(commits.items()):
            samples["branchpy_sink_write_commits_total"].append(_sample(n, sink=name, op=op))
        for (op, cause), n in sorted(conflicts.items()):
            samples["branchpy_sink_write_conflicts_total"].append(_sample(n, sink=name, op=op, cause=cause))
        for op, n in sorted(exhausted.items()):
            samples["branchpy_sink_write_retries_exhausted_total"].append(_sample(n, sink=name, op=op))
        for op, seconds in sorted(stats["wait_s"].items()):
            samples["branchpy_sink_write_retry_wait_seconds_total"].append(_sample(seconds, sink=name, op=op))
        samples["branchpy_sink_write_shards"].append(_sample(member.write_shards, sink=name))
        samples["branchpy_sink_write_retry_deadline_seconds"].append(
            _sample(retrier.policy.deadline_s, sink=name))
    lines = []
    for name, kind, help_text in FAMILIES:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        lines += [name + sample for sample in samples[name]]
    return "\n".join(lines) + "\n"


def _sample(value: float, **labels: str) -> str:
    text = ",".join(f'{key}="{_escape(str(v))}"' for key, v in labels.items())
    number = repr(float(value)) if isinstance(value, float) else str(value)
    return f"{{{text}}} {number}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
