"""The README's test command is exactly what CI runs (a green CI proves the README)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_test_command():
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    test_commands = [c for c in _readme_commands() if "pytest" in c and "venv" in c]
    assert test_commands, "README has no test command"
    assert test_commands[0] in ci_lines, "README's test command and .ci/run have drifted apart"


def test_readme_has_a_run_command_on_the_sqlite_default():
    assert any("pip install" in c and "branchpy" in c and "pytest" not in c for c in _readme_commands())
