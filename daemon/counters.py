"""Persistent counters since install (`paths.counters_file`, a JSON object).

Flat dotted names, e.g. `uploaded.events`, `dropped.outbox_full.events`,
`dropped.outbox_full.packages`, `quarantined.packages`; `status` groups them.
Every change re-reads the file under a lock (threads and other processes)
and rewrites it atomically, so nothing is lost or torn.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

from branchpy_telemetry.client.infra.atomic_write import write_atomic
from branchpy_telemetry.client.infra.file_lock import locked


class CounterStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def increment(self, name: str, by: int = 1) -> int:
        return self.increment_many({name: by})[name]

    def increment_many(self, deltas: Mapping[str, int]) -> dict[str, int]:
        with self._locked():
            values = self._read()
            for name, by in deltas.items():
                values[name] = int(values.get(name, 0)) + int(by)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps(values, sort_keys=True, indent=1).encode())
            return values

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return self._read()

    def _read(self) -> dict[str, int]:
        try:
            values = json.loads(self.path.read_bytes())
        except (FileNotFoundError, ValueError):
            return {}
        if not isinstance(values, dict):
            return {}
        return {str(k): v for k, v in values.items() if isinstance(v, int)}

    @contextmanager
    def _locked(self):
        """This process's threads, then other processes (a lock file beside the counters)."""
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with locked(self.path.with_name(self.path.name + ".lock")):
                yield
