"""SecondaryBacklog: the packages each composite secondary still has to receive, kept on disk.

One SQLite file (WAL). A row per (secondary, package) is added once the
primary has stored the package and removed once that secondary has it, so
whatever a secondary misses — while it is down, slow, or past its in-flight
bound — waits here, across restarts, until it is delivered. A secondary is
named by `identity` (its URL without password or options, or its file
path), not its position, so reordering `--db` flags keeps each backlog with
its sink.

The file is written with `synchronous=NORMAL`: a row survives the process
being killed at any point (the WAL is in the OS' cache); a power loss can
lose the last rows, which only matters if the secondary also missed them.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from branchpy_telemetry.backend.sinks.base import SinkError

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS pending (seq INTEGER PRIMARY KEY AUTOINCREMENT, member TEXT NOT NULL,
        package_id TEXT NOT NULL, body BLOB NOT NULL, receipt TEXT NOT NULL, body_bytes INTEGER NOT NULL,
        received_at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS ix_pending_member ON pending (member, seq)",
]
_INSERT = ("INSERT INTO pending (member, package_id, body, receipt, body_bytes, received_at) "
           "VALUES (?, ?, ?, ?, ?, ?)")


@dataclass(frozen=True)
class PendingPackage:
    seq: int
    member: str
    package_id: str
    body: bytes
    receipt: str
    body_bytes: int
    received_at: str


class SecondaryBacklog:
    """Thread-safe (one connection behind a lock; every statement is short)."""

    def __init__(self, path: str | Path | None = None):
        """`path` None: in memory (tests, and composites built in code; not durable)."""
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path or ":memory:", isolation_level=None, check_same_thread=False,
                                       timeout=10.0)
            # 64 KiB pages: a 5 MB package is a short overflow chain (9 ms to insert instead of 50 ms)
            self._db.execute("PRAGMA page_size = 65536")  # takes effect on a new file (before WAL)
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            for statement in SCHEMA:
                self._db.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise SinkError(f"cannot open the secondary backlog {self.path}: {exc}") from exc

    def add(self, members: list[str], package_id: str, body: bytes, *, receipt: str, body_bytes: int,
            received_at: str) -> dict[str, int]:
        """One row per member, in one transaction; member -> its row's seq."""
        seqs: dict[str, int] = {}
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for member in members:
                    row = (member, package_id, body, receipt, body_bytes, received_at)
                    seqs[member] = self._db.execute(_INSERT, row).lastrowid
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return seqs

    def remove(self, seq: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM pending WHERE seq = ?", (seq,))

    def oldest(self, member: str, exclude: set[int], limit: int = 8) -> list[PendingPackage]:
        """The member's oldest rows, skipping `exclude` (rows a live write is delivering)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, member, package_id, body, receipt, body_bytes, received_at FROM pending "
                "WHERE member = ? ORDER BY seq LIMIT ?", (member, limit + len(exclude))).fetchall()
        return [PendingPackage(*row) for row in rows if row[0] not in exclude][:limit]

    def count(self, member: str) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM pending WHERE member = ?", (member,)).fetchone()[0]

    def members(self) -> dict[str, int]:
        """Every member with rows, and how many (orphans of a sink no longer configured included)."""
        with self._lock:
            return dict(self._db.execute("SELECT member, COUNT(*) FROM pending GROUP BY member").fetchall())

    def close(self) -> None:
        with self._lock:
            self._db.close()
