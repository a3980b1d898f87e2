"""The redaction report written next to an export: `NAME.redactions.json`.

Counts per rule and JSON pointers into the package file(s) — each finding
names the file it points into — and never the removed values. Findings are
streamed to a temporary file as each part is written (memory stays flat for
any window); at most `max_findings_per_file` are listed per package file, the
rest are counted in `findings_omitted`. The file appears atomically (0600, `AtomicFile`).
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from branchpy_telemetry.client.contracts.errors import StorageError
from branchpy_telemetry.client.infra.atomic_write import AtomicFile

NOTE = "JSON pointers into the package file(s) named by `file`; removed values are never recorded"
_enc = msgspec.json.Encoder()


class RedactionSidecar:
    max_findings_per_file = 10_000

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: list[dict] = []
        self.counts: dict[str, int] = {}
        self.omitted = 0
        self._first = True
        try:
            self._file = AtomicFile(path)
        except OSError as exc:
            raise StorageError(f"cannot write {path}: {exc.strerror}") from None
        self._write(b'{"findings":[')

    def add_file(self, name: str, package_id: str, counts: dict[str, int],
                 findings: list[tuple[str, str, str]], omitted: int) -> None:
        chunks = []
        for pointer, rule, location in findings:
            chunks.append(_enc.encode({"file": name, "pointer": pointer, "rule": rule, "location": location}))
        if chunks:
            self._write((b"" if self._first else b",") + b",".join(chunks))
            self._first = False
        self.files.append({"file": name, "package_id": package_id, "counts": dict(sorted(counts.items())),
                           "findings_omitted": omitted})
        for rule, n in counts.items():
            self.counts[rule] = self.counts.get(rule, 0) + n
        self.omitted += omitted

    def finish(self) -> None:
        tail = {"files": self.files, "counts": dict(sorted(self.counts.items())),
                "total": sum(self.counts.values()), "findings_omitted": self.omitted, "note": NOTE}
        self._write(b"]," + _enc.encode(tail)[1:])
        try:
            self._file.commit()  # on failure the temp file is gone too
        except OSError as exc:
            raise StorageError(f"cannot write {self.path}: {exc.strerror}") from None

    def discard(self) -> None:
        self._file.discard()

    def _write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            self.discard()
            raise StorageError(f"cannot write {self.path}: {exc.strerror}",
                               hint="check free disk space") from None


def read_sidecar(path: Path) -> dict | None:
    """The sidecar's contents, or None when there is none (or it is unreadable)."""
    try:
        body = msgspec.json.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError):
        return None
    return body if isinstance(body, dict) else None
