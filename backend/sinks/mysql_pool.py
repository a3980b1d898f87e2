"""The MySQL sink's connection pool, and what it does when the server stops answering.

At most `size` connections; a checkout waits up to `timeout` seconds for one,
pings an idle connection and replaces a dead one. A connection whose
rollback fails is discarded.

A frozen server (stopped process, full disk, lost network) does not refuse
connections: it accepts them and never answers. Every socket operation has a
deadline (the sink's read/write timeouts), so the first request to meet it
fails after that long. The pool then marks the server *unresponsive* for
`cooldown_s`: checkouts fail at once with SinkError (503 + Retry-After)
instead of each waiting out its own timeout, so worker threads are not held
and the process keeps answering. A successful health probe clears the mark;
after the cooldown the next checkout tries the server again.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time

import pymysql

from branchpy_telemetry.backend.sinks.base import SinkError


def is_timeout(exc: BaseException) -> bool:
    """A driver error caused by a socket deadline (the server accepted but did not answer)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, TimeoutError):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


class ConnectionPool:
    def __init__(self, connect, size: int, timeout: float, *, cooldown_s: float = 5.0,
                 clock=time.monotonic):
        self._connect = connect
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._timeout = timeout
        self._closed = False
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._unresponsive_until = 0.0

    # ---- the unresponsive mark ------------------------------------------------------
    def mark_unresponsive(self) -> None:
        self._unresponsive_until = self._clock() + self._cooldown_s

    def mark_responsive(self) -> None:
        self._unresponsive_until = 0.0

    @property
    def unresponsive(self) -> bool:
        return self._clock() < self._unresponsive_until

    def _note(self, exc: BaseException) -> None:
        if is_timeout(exc):
            self.mark_unresponsive()

    # ---- checkout -----------------------------------------------------------------------
    @contextlib.contextmanager
    def connection(self):
        if self._closed:
            raise SinkError("mysql sink is closed")
        if self.unresponsive:
            raise SinkError(f"the mysql server stopped answering; not tried again for {self._cooldown_s:g}s")
        if not self._slots.acquire(timeout=self._timeout):
            raise SinkError(f"mysql connection pool exhausted for {self._timeout:g}s")
        try:
            conn = self._checkout()
            try:
                yield conn
            except BaseException as exc:
                self._note(exc)
                self._put_back_rolled_back(conn)
                raise
            self._idle.put(conn)
        finally:
            self._slots.release()

    def _put_back_rolled_back(self, conn) -> None:
        try:
            conn.rollback()
        except pymysql.err.MySQLError:  # broken (a timeout closes it): never reuse it
            close_quietly(conn)
            return
        self._idle.put(conn)

    def _checkout(self):
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                try:
                    return self._connect()
                except pymysql.err.MySQLError as exc:
                    self._note(exc)
                    raise
            try:
                conn.ping(reconnect=False)
                return conn
            except pymysql.err.MySQLError as exc:
                close_quietly(conn)
                if is_timeout(exc):  # a server that let a ping time out will not answer a new connection
                    self.mark_unresponsive()
                    raise

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                close_quietly(self._idle.get_nowait())
            except queue.Empty:
                return


def close_quietly(conn) -> None:
    with contextlib.suppress(Exception):
        conn.close()
