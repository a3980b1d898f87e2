"""What the SQL sinks' statements run through: a cursor wrapper that turns the
shared `?` placeholders into the driver's and can record the statements (the
query-plan tests), and small WHERE builders."""

from __future__ import annotations


class TracingCursor:
    """Wraps a DB-API cursor: `?` -> the driver's placeholder, optional statement log."""

    def __init__(self, cur, convert, trace: list | None):
        self._cur, self._convert, self._trace = cur, convert, trace

    def execute(self, sql: str, args=()):
        if self._trace is not None:
            self._trace.append((sql, tuple(args)))
        return self._cur.execute(self._convert(sql), args)

    def executemany(self, sql: str, rows):
        return self._cur.executemany(self._convert(sql), rows)

    def fetchone(self):
        return self._cur.fetchone()

    def fetchall(self):
        return self._cur.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount


def hour_where(column: str, lo: int | None, hi: int | None) -> tuple[list[str], list]:
    """Conditions (and their arguments) for lo <= column < hi; either bound may be open."""
    where, args = [], []
    if lo is not None:
        where.append(f"{column} >= ?")
        args.append(lo)
    if hi is not None:
        where.append(f"{column} < ?")
        args.append(hi)
    return where, args


def where_clause(where: list[str]) -> str:
    """` WHERE a AND b` (nothing for no condition)."""
    return (" WHERE " + " AND ".join(where)) if where else ""
