"""`with track("analyze"):` — time a block and emit one event for it."""

from __future__ import annotations

import time
from typing import Any

from branchpy_telemetry.client.emitter.emit import Emitter, default_emitter


class track:  # lower case: used like a function, `with track("analyze"):`
    """Time a block and emit one event: status ok/error, duration (monotonic), the error.

    A raised exception's code (`getattr(exc, "code", None)`), type and message are
    recorded, then the exception propagates unchanged. `SystemExit(0)` counts as ok.
    `attrs` may be filled inside the block through the returned object; other keyword
    arguments (session_id, correlation_id, source) go to `emit()` as they are.
    """

    __slots__ = ("name", "category", "attrs", "fields", "emitter", "_start", "duration_ms", "status")

    def __init__(self, name: str, category: str = "command", *, attrs: dict | None = None,
                 emitter: Emitter | None = None, **fields: Any) -> None:
        self.name, self.category, self.fields, self.emitter = name, category, fields, emitter
        self.attrs = dict(attrs) if attrs else {}
        self.duration_ms: float | None = None
        self.status: str | None = None
        self._start = 0.0

    def __enter__(self) -> track:
        self._start = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.duration_ms = round((time.perf_counter() - self._start) * 1000.0, 3)
        ok = exc is None or (isinstance(exc, SystemExit) and exc.code in (0, None))
        self.status = "ok" if ok else "error"
        fields = dict(self.fields, duration_ms=self.duration_ms, status=self.status,
                      error=None if ok else exc, attrs=self.attrs or None)
        try:
            (self.emitter or default_emitter()).emit(self.category, self.name, **fields)
        except Exception:  # noqa: S110 - emit() never raises; this guards default_emitter()
            pass
        return False  # never swallow the caller's exception
