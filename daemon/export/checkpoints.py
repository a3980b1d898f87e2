"""Durable per-source read checkpoints: how far each JSONL file is delivered.

A source file is known by its *identity*, not its name: `(st_dev, st_ino)`
plus a hash of its first complete line. A rotated spool file (renamed, same
inode) or a file the VS Code extension renamed keeps its identity, so its
checkpoint carries over and reading continues at its offset; a new file that
reuses a freed inode has another first line (event ids are unique), so it
starts from 0. A file without a complete first line has no identity yet and
nothing to read.

The offset is always the end of the last complete line consumed (never
inside a line). The file `paths.checkpoints_file` is a JSON object written
atomically (temp + fsync + rename), so a crash leaves the old or the new
checkpoints, never a torn file. A checkpoint whose file vanished is kept for
`VANISHED_GRACE_S` (a rename by another program may be in flight) and only
then forgotten.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import structlog

from branchpy_telemetry.client.contracts.errors import StorageError
from branchpy_telemetry.client.infra.atomic_write import write_atomic

log = structlog.get_logger("branchpy.checkpoints")

VANISHED_GRACE_S = 30.0
MAX_HEAD_BYTES = 64 * 1024  # a first line longer than this is identified by its first 64 KiB
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class FileIdentity:
    dev: int
    ino: int
    head: str  # sha256 hex (16 chars) of the first complete line (or its first 64 KiB)

    @property
    def key(self) -> str:
        return f"{self.dev}:{self.ino}:{self.head}"


@dataclass(slots=True)
class Checkpoint:
    offset: int  # end of the last complete line consumed
    path: str  # where the file was last seen
    kind: str  # "spool" | "extension"
    last_seen: float  # wall-clock time of the last listing that showed the file
    consumed_ns: int | None = None  # set when a rotated (final) file was read to its end


def identify(fd: int) -> FileIdentity | None:
    """The identity of an open file, or None while it has no complete first line."""
    st = os.fstat(fd)
    head = os.pread(fd, min(MAX_HEAD_BYTES, st.st_size), 0)
    cut = head.find(b"\n")
    if cut < 0 and len(head) < MAX_HEAD_BYTES:
        return None
    first = head if cut < 0 else head[:cut + 1]
    return FileIdentity(st.st_dev, st.st_ino, hashlib.sha256(first).hexdigest()[:16])


class CheckpointStore:
    """The checkpoints of every source; `save()` makes changes durable."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.entries: dict[str, Checkpoint] = {}

    @classmethod
    def load(cls, path: Path) -> CheckpointStore:
        store = cls(path)
        try:
            data = json.loads(store.path.read_bytes())
        except FileNotFoundError:
            return store
        except ValueError:
            # Only reachable by hand edits (writes are atomic): start over, the backend dedups by event_id.
            log.warning("checkpoints.unreadable", path=str(store.path))
            return store
        except OSError as exc:
            raise StorageError(f"cannot read the checkpoints {store.path}: {exc.strerror}") from None
        for key, raw in (data.get("sources") or {}).items() if isinstance(data, dict) else ():
            try:
                store.entries[key] = Checkpoint(offset=int(raw["offset"]), path=str(raw["path"]),
                                                kind=str(raw.get("kind", "spool")),
                                                last_seen=float(raw.get("last_seen", 0.0)),
                                                consumed_ns=raw.get("consumed_ns"))
            except (KeyError, TypeError, ValueError):
                log.warning("checkpoints.bad_entry", key=key)
        return store

    def get(self, identity: FileIdentity) -> Checkpoint | None:
        return self.entries.get(identity.key)

    def offset(self, identity: FileIdentity) -> int:
        entry = self.entries.get(identity.key)
        return entry.offset if entry else 0

    def advance(self, identity: FileIdentity, offset: int, *, path: Path, kind: str,
                seen: float | None = None, consumed_ns: int | None = None) -> None:
        entry = self.entries.get(identity.key)
        now = time.time() if seen is None else seen
        if entry is None:
            self.entries[identity.key] = Checkpoint(offset=offset, path=str(path), kind=kind, last_seen=now,
                                                    consumed_ns=consumed_ns)
            return
        entry.offset, entry.path, entry.kind, entry.last_seen = offset, str(path), kind, now
        if consumed_ns is not None and entry.consumed_ns is None:
            entry.consumed_ns = consumed_ns

    def find_by_path(self, path: Path) -> Checkpoint | None:
        text = str(path)
        return next((e for e in self.entries.values() if e.path == text), None)

    def forget_vanished(self, seen_keys: set[str], now: float | None = None,
                        grace_s: float = VANISHED_GRACE_S) -> list[str]:
        """Drop checkpoints of files not listed for `grace_s` seconds; returns their keys."""
        now = time.time() if now is None else now
        gone = [k for k, e in self.entries.items() if k not in seen_keys and now - e.last_seen > grace_s]
        for key in gone:
            del self.entries[key]
        return gone

    def forget_where(self, predicate) -> int:
        keys = [k for k, e in self.entries.items() if predicate(e)]
        for key in keys:
            del self.entries[key]
        return len(keys)

    def save(self) -> None:
        body = {"version": FORMAT_VERSION,
                "sources": {k: asdict(e) for k, e in sorted(self.entries.items())}}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps(body, indent=1).encode())
        except OSError as exc:
            raise StorageError(f"cannot write the checkpoints {self.path}: {exc.strerror}",
                               hint="free disk space or fix the folder's permissions") from None
