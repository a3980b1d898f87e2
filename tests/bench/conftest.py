"""Benchmarks: each compares our code against the raw baseline in the same
run and prints a table of ratios. Nothing here asserts on time.

    BRANCHPY_BENCH=full .venv/bin/python -m pytest tests/bench -q

Without BRANCHPY_BENCH=full they run at smoke size inside the normal test
run, so they cannot rot; the numbers are only meaningful at full size.
"""

from __future__ import annotations

import os

import pytest


def full_size() -> bool:
    return os.environ.get("BRANCHPY_BENCH") == "full"


def scaled(full: int, smoke: int) -> int:
    return full if full_size() else smoke


def format_table(title: str, header: list[str], rows: list[list[object]]) -> str:
    cells = [header] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    line = "+".join("-" * (w + 2) for w in widths)
    out = [f"\n{title}", line]
    for i, row in enumerate(cells):
        out.append(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if i == 0:
            out.append(line)
    return "\n".join(out)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


_TABLES: list[str] = []


@pytest.fixture
def report():
    """Call report(title, header, rows): the table is printed in the run's terminal summary."""

    def add(title: str, header: list[str], rows: list[list[object]]) -> None:
        _TABLES.append(format_table(("[smoke size] " if not full_size() else "") + title, header, rows))

    return add


def pytest_terminal_summary(terminalreporter):
    if _TABLES:
        terminalreporter.section("benchmarks")
        for text in _TABLES:
            terminalreporter.write_line(text)
