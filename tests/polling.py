"""Waiting in tests: poll a condition up to a deadline, never a bare sleep.

`wait_until(predicate, timeout=…, what=…)` calls `predicate` every `interval` seconds and
returns its first truthy answer; past the deadline it fails the test naming `what`.
`poll(…)` is the same without failing: it returns the last (falsy) answer instead, for a
caller that turns a timeout into its own outcome.

This is the one module under tests/ whose `time.sleep` needs no comment. A pause that makes
a time gap on purpose (a client paced like a slow attacker, work that must take measurable
time) says so on its line with `# deliberate pause: <why>`; tests/test_suite_hygiene.py
fails on any other sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(predicate: Callable[[], T], *, timeout: float, interval: float = 0.05) -> T:
    """Calls `predicate` until it answers truthy or `timeout` seconds pass; returns its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        answer = predicate()
        if answer or time.monotonic() >= deadline:
            return answer
        time.sleep(interval)


def wait_until(predicate: Callable[[], T], *, timeout: float = 20.0, what: str | Callable[[], str] = "",
               interval: float = 0.05) -> T:
    """`poll`, failing the test when the deadline passes; `what` (or a function giving it, called
    only on failure) names what was awaited."""
    answer = poll(predicate, timeout=timeout, interval=interval)
    if not answer:
        described = what() if callable(what) else what
        raise AssertionError(f"{described or 'the condition'} not reached within {timeout:g} s")
    return answer
