"""A one-line progress display on stderr, only when stderr is a terminal."""

from __future__ import annotations

import sys
from typing import TextIO


class TerminalProgress:
    def __init__(self, label: str, stream: TextIO | None = None):
        self.label = label
        self.stream = stream or sys.stderr
        self._shown = False

    @classmethod
    def maybe(cls, label: str, enabled: bool) -> TerminalProgress | None:
        """A display when `enabled` and stderr is a TTY, else None (no progress wanted)."""
        return cls(label) if enabled and sys.stderr.isatty() else None

    def __call__(self, progress) -> None:
        done, total = progress.done, progress.total
        text = f"{self.label}: {done:,}" + (f"/{total:,} ({100 * done // total}%)" if total else "")
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()
        self._shown = True

    def finish(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
