"""Slow clients against a real server (`serve`, waitress, SQLite), loopback only.

Threat: a client opens many connections and feeds them slowly (slowloris:
headers a line at a time, a body a few bytes at a time, or nothing at all),
to use up the server's connection slots so that nobody else gets in.
Promise: 150 such connections leave the server answering everyone else
within a second or two; a request whose headers or body do not arrive in
time gets 408 and its connection is closed. The control test shows the same
attack locking clients out at waitress' default limit of 100 connections.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import ExitStack

import msgspec
import pytest
import requests

from ..backend.conftest import make_package
from ..backend.live_backend import start_sqlite_backend
from ..polling import wait_until
from .conftest import connect, read_response, status_of

SLOW_CONNECTIONS = 150
NORMAL_DEADLINE_S = 3.0  # what a normal request may take while the attack runs (the 2-core CI box is busy)


class Slowloris:
    """`count` connections: a third idle, a third sending headers a line at a time, a third
    sending a 5 MB body a few bytes at a time. `feed()` runs in a thread until `stop()`."""

    def __init__(self, server, count: int, interval_s: float = 0.5):
        self.server, self.count, self.interval_s = server, count, interval_s
        self.sockets: list[tuple[str, socket.socket]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.feed, daemon=True)
        self.send_errors = 0
        self.rounds = 0  # feeding rounds done: the attack is established once it has fed

    def __enter__(self) -> Slowloris:
        for i in range(self.count):
            sock = connect(self.server)
            kind = ("idle", "headers", "body")[i % 3]
            if kind == "headers":
                sock.sendall(b"POST /api/telemetry/upload HTTP/1.1\r\nHost: loris\r\n")
            elif kind == "body":
                sock.sendall(b"POST /api/telemetry/upload HTTP/1.1\r\nHost: loris\r\n"
                             b"Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n{")
            self.sockets.append((kind, sock))
        self._thread.start()
        return self

    def feed(self) -> None:
        n = 0
        while not self._stop.wait(self.interval_s):
            n += 1
            self.rounds = n
            for kind, sock in self.sockets:
                try:
                    if kind == "headers":
                        sock.sendall(b"X-Loris-%d: a\r\n" % n)
                    elif kind == "body":
                        sock.sendall(b" ")
                except OSError:
                    self.send_errors += 1

    def wait_feeding(self, rounds: int = 2) -> None:
        """Returns once every connection is open and has been fed `rounds` times."""
        wait_until(lambda: self.rounds >= rounds, timeout=10 + rounds * self.interval_s,
                   what=f"{rounds} feeding rounds of the attack")

    def still_open(self) -> int:
        """Connections the server has not closed (no EOF, no reset, nothing to read)."""
        open_count = 0
        for _, sock in self.sockets:
            timeout = sock.gettimeout()
            sock.setblocking(False)
            try:
                sock.recv(1, socket.MSG_PEEK)  # data (an answer) or b"" (closed): not held open
            except BlockingIOError:
                open_count += 1
            except OSError:
                pass
            finally:
                sock.settimeout(timeout)
        return open_count

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)
        for _, sock in self.sockets:
            sock.close()


def timed(call) -> tuple[float, requests.Response | None]:
    started = time.monotonic()
    try:
        response = call()
    except requests.RequestException:
        response = None
    return time.monotonic() - started, response


def normal_traffic(server) -> list[tuple[float, int]]:
    """(seconds, status) of 20 health checks, 10 uploads and 10 queries, each with a deadline."""
    results = []
    headers = {**server.headers("ingest"), "Content-Type": "application/json"}
    for i in range(20):
        calls = [lambda: requests.get(server.api + "/health", timeout=NORMAL_DEADLINE_S)]
        if i % 2 == 0:
            body = msgspec.json.encode(make_package(5, seed=1000 + i))
            calls.append(lambda body=body: requests.post(server.api + "/upload", data=body, headers=headers,
                                                         timeout=NORMAL_DEADLINE_S))
            calls.append(lambda: requests.get(server.api + "/stats", headers=server.headers("read"),
                                              timeout=NORMAL_DEADLINE_S))
        for call in calls:
            elapsed, response = timed(call)
            results.append((elapsed, response.status_code if response is not None else 0))
    return results


def test_150_slow_connections_do_not_keep_anyone_else_out(tmp_path):
    server = start_sqlite_backend(tmp_path)
    try:
        with Slowloris(server, SLOW_CONNECTIONS) as attack:
            attack.wait_feeding()  # a real attacker's steady state
            results = normal_traffic(server)
            open_during = attack.still_open()
        assert all(status in (200, 201) for _, status in results), results
        worst = max(elapsed for elapsed, _ in results)
        assert worst < NORMAL_DEADLINE_S, f"slowest normal request took {worst:.2f}s"
        assert open_during == SLOW_CONNECTIONS, "the attack must really hold its connections open"
        assert requests.get(server.api + "/health", timeout=5).status_code == 200
    finally:
        server.stop()


def test_control_the_same_attack_locks_clients_out_at_waitress_default_limit(tmp_path):
    server = start_sqlite_backend(tmp_path, connection_limit="100")
    try:
        with Slowloris(server, SLOW_CONNECTIONS) as attack:
            attack.wait_feeding()
            elapsed, response = timed(lambda: requests.get(server.api + "/health", timeout=2.0))
        assert response is None, "with 100 slots and 150 slow clients a normal request must not get through"
    finally:
        server.stop()


@pytest.fixture
def strict_server(tmp_path):
    server = start_sqlite_backend(tmp_path, header_timeout_s="2", body_timeout_s="2", body_min_rate="1000")
    yield server
    server.stop()


def expect_408(sock: socket.socket, within_s: float) -> float:
    started = time.monotonic()
    response = read_response(sock, deadline_s=within_s)
    elapsed = time.monotonic() - started
    assert status_of(response) == 408, response[:300]
    assert b'"code":"request_timeout"' in response
    assert sock.recv(1) == b""  # and the connection is closed
    return elapsed


def test_headers_that_never_finish_get_408_after_the_header_deadline(strict_server):
    with ExitStack() as stack:
        sock = stack.enter_context(connect(strict_server))
        sock.sendall(b"GET /api/telemetry/health HTTP/1.1\r\nHost: x\r\n")
        for i in range(3):  # keeps sending: inactivity alone would never close it
            time.sleep(0.5)  # deliberate pause: a slow client's pace
            sock.sendall(b"X-Slow-%d: 1\r\n" % i)
        elapsed = expect_408(sock, within_s=6.0)
        assert elapsed < 5.0


def test_a_body_slower_than_the_minimum_rate_gets_408(strict_server):
    with connect(strict_server) as sock:
        sock.sendall(b"POST /api/telemetry/upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000\r\n\r\n")
        sent = 0
        started = time.monotonic()
        while time.monotonic() - started < 3.0:  # 100 B/s against a 1000 B/s minimum
            sock.sendall(b" " * 50)
            sent += 50
            time.sleep(0.5)  # deliberate pause: a slow client's pace
        expect_408(sock, within_s=6.0)


def test_a_body_at_an_acceptable_rate_is_not_cut_off(strict_server):
    body = msgspec.json.encode(make_package(3, seed=5))
    with connect(strict_server) as sock:
        sock.sendall(b"POST /api/telemetry/upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"X-API-Key: " + strict_server.keys["ingest"].encode() + b"\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
        step = 800  # 1600 B/s: above the 1000 B/s minimum, and slower than the 2 s grace for this body
        for i in range(0, len(body), step):
            sock.sendall(body[i:i + step])
            time.sleep(0.5)  # deliberate pause: a slow client's pace
        assert status_of(read_response(sock)) == 201
