"""Rules the test suite keeps about itself: it waits by polling, and its service markers hold.

A bare `time.sleep` in a test either waits for something (flaky on a loaded machine, slow on an
idle one: poll with a deadline, tests/polling.py) or makes a time gap on purpose, which its line
says with `# deliberate pause: <why>`. The markers `mysql`, `browser` and `galera` let a
contributor run `pytest -m "not mysql and not browser and not galera"` with no service at all.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from .service_markers import SERVICE_FIXTURES, require_service, sink_kind_params

TESTS_DIR = Path(__file__).parent
POLL_HELPER = TESTS_DIR / "polling.py"
DELIBERATE = re.compile(r"#\s*deliberate pause:\s*\S")
SLEEP_MODULES = {"time", "asyncio"}


def sleep_calls(source: str) -> list[int]:
    """Line numbers of `time.sleep(…)`, `asyncio.sleep(…)` and a bare `sleep(…)` imported from either."""
    tree = ast.parse(source)
    imported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module in SLEEP_MODULES for alias in node.names if alias.name == "sleep"}
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr == "sleep" and isinstance(func.value, ast.Name)
                and func.value.id in SLEEP_MODULES) or (isinstance(func, ast.Name) and func.id in imported):
            lines.append(node.lineno)
    return sorted(lines)


def bare_sleeps(folder: Path) -> list[str]:
    """`path:line` of each sleep under `folder` outside the poll helper with no deliberate-pause comment."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        if path == POLL_HELPER or ".venv" in path.parts:
            continue
        source = path.read_text()
        text_lines = source.splitlines()
        for line in sleep_calls(source):
            if not DELIBERATE.search(text_lines[line - 1]):
                found.append(f"{path.relative_to(folder.parent)}:{line}: {text_lines[line - 1].strip()}")
    return found


def test_no_test_sleeps_to_wait_for_something():
    assert bare_sleeps(TESTS_DIR) == [], (
        "wait with tests/polling.py (wait_until / poll, on a deadline); a pause that makes a time gap on "
        "purpose says so on its line: # deliberate pause: <why>")


def test_the_sleep_finder_sees_every_spelling_and_honours_only_a_reason():
    source = ("import time, asyncio\nfrom time import sleep as nap\n"
              "time.sleep(1)\nasyncio.sleep(1)\nnap(1)\n"
              "time.sleep(1)  # deliberate pause: a slow client's pace\n"
              "time.sleep(1)  # deliberate pause:\n"
              "text = 'time.sleep(1)'\n")
    assert sleep_calls(source) == [3, 4, 5, 6, 7]
    flagged = [n for n in sleep_calls(source) if not DELIBERATE.search(source.splitlines()[n - 1])]
    assert flagged == [3, 4, 5, 7]


def test_every_service_fixture_named_in_the_marker_table_exists():
    defined = set()
    for path in TESTS_DIR.rglob("*.py"):
        defined |= set(re.findall(r"@pytest\.fixture[^\n]*\n(?:@[^\n]*\n)*def (\w+)\(", path.read_text()))
    assert set(SERVICE_FIXTURES) - defined == set()


def test_a_test_that_reaches_a_service_without_its_marker_fails_naming_the_marker():
    with pytest.raises(pytest.fail.Exception, match=r"is not marked `mysql`.*@pytest\.mark\.mysql"):
        require_service("mysql")


def test_a_test_carrying_the_marker_may_reach_the_service(request):
    request.node.add_marker("browser")  # as collection would; no browser is started, only the check runs
    require_service("browser")


def test_mysql_backed_sink_kinds_carry_the_mysql_marker():
    params = sink_kind_params(["memory", "sqlite", "mysql", "composite"])
    marked = [p.values[0] for p in params if hasattr(p, "marks") and any(m.name == "mysql" for m in p.marks)]
    assert params[:2] == ["memory", "sqlite"] and marked == ["mysql", "composite"]
