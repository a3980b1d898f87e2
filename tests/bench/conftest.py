"""Benchmarks: each compares our code against the raw baseline in the same
run and prints a table of ratios. Nothing here asserts on time.

    BRANCHPY_BENCH=full .venv/bin/python -m pytest tests/bench -s -q

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


@pytest.fixture
def report(request):
    """Call report(title, header, rows): printed at the end of the run (-s shows it live too)."""
    tables: list[str] = []

    def add(title: str, header: list[str], rows: list[list[object]]) -> None:
        text = format_table(("[smoke size] " if not full_size() else "") + title, header, rows)
        tables.append(text)
        print(text)

    yield add
    terminalreporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if terminalreporter is not None:
        for text in tables:
            terminalreporter.write_line(text)
