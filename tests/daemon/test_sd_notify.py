"""sd_notify against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import os
import socket

import pytest

from branchpy_telemetry.daemon.control.sd_notify import (
    notify_ready,
    notify_stopping,
    notify_watchdog,
    sd_notify,
    watchdog_interval,
)


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield sock, {"NOTIFY_SOCKET": str(path)}
    sock.close()


def test_ready_watchdog_and_stopping_arrive_as_datagrams(notify_socket):
    sock, env = notify_socket
    assert notify_ready("serving", env=env)
    assert sock.recv(4096) == b"READY=1\nSTATUS=serving"
    assert notify_watchdog(env=env)
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert notify_stopping(env=env)
    assert sock.recv(4096) == b"STOPPING=1"


def test_abstract_namespace_address_is_supported():
    name = f"branchpy-test-{os.getpid()}-{id(object())}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert sd_notify("READY=1", env={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(100) == b"READY=1"


def test_without_notify_socket_it_is_a_no_op():
    assert sd_notify("READY=1", env={}) is False


def test_a_dead_notify_socket_is_logged_not_raised(tmp_path):
    assert sd_notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}) is False


def test_watchdog_interval_reads_watchdog_usec_for_this_process():
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None and watchdog_interval({"WATCHDOG_USEC": "x"}) is None


def test_watchdog_pinger_pings_at_half_the_interval(notify_socket):
    from branchpy_telemetry.daemon.control.sd_notify import WatchdogPinger

    sock, env = notify_socket
    now = [100.0]
    pinger = WatchdogPinger({**env, "WATCHDOG_USEC": "10000000"}, clock=lambda: now[0])
    assert pinger.active and pinger.period == 5.0
    assert pinger.ping_if_due() and sock.recv(100) == b"WATCHDOG=1"
    now[0] += 4.9
    assert not pinger.ping_if_due()
    now[0] += 0.2
    assert pinger.ping_if_due() and sock.recv(100) == b"WATCHDOG=1"


def test_watchdog_pinger_is_inactive_outside_systemd():
    from branchpy_telemetry.daemon.control.sd_notify import WatchdogPinger

    pinger = WatchdogPinger({})
    assert not pinger.active and not pinger.ping_if_due()
