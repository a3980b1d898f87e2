"""Nothing in the repository cites a document or an issue the repository does not contain.

A clone has no design document and no issue tracker, so a comment that says "see the design's
section n" or "(issue n)" cannot be resolved by its reader. Comments and docstrings say what they
need in place or point to a page under docs/. This test reads every git-tracked text file and
lists each line that still cites one of them, as `path:line: text`.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

THIS_FILE = Path(__file__).resolve()
REPO_ROOT = THIS_FILE.parents[2]

# Each pattern is a citation form. This file spells examples of each to test them, so it is not scanned.
CITATION_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("the design document", re.compile(r"\bDESIGN\b")),  # upper case: the document's name
    ("the design document", re.compile(r"\bdesign\.md\b", re.IGNORECASE)),
    ("a design section", re.compile(r"\bdesign\s*§", re.IGNORECASE)),
    ("a numbered section", re.compile(r"§\s*\d")),
    ("an issue", re.compile(r"\bissues?\s*#?\d+", re.IGNORECASE)),
)

SNIFF_BYTES = 8192


def tracked_files() -> list[Path]:
    """Every file git tracks in this checkout (worktrees included)."""
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, check=True, capture_output=True
    ).stdout
    return [REPO_ROOT / name for name in listing.decode().split("\0") if name]


def text_of(path: Path) -> str | None:
    """The file's text, or None for a binary file (a NUL byte, or not UTF-8)."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):  # deleted but not yet committed; a submodule
        return None
    if b"\0" in data[:SNIFF_BYTES]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def citations_in(text: str) -> list[tuple[int, str, str]]:
    """(line number, what it cites, the line) for every line that cites something outside."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for what, pattern in CITATION_PATTERNS:
            if pattern.search(line):
                found.append((number, what, line.strip()))
                break
    return found


def test_the_patterns_catch_every_citation_form():
    cited = [
        "(DESIGN §10)", "see DESIGN.md", "keys: design §4", "its version (§5)",
        "(issue 4)", "Issue 3 acceptance", "issue 4 §3", "issues 2 and 3", "issue #14",
    ]
    for line in cited:
        assert citations_in(line), line
    clean = [
        "an issue with the socket", "color: #333;", "&#64; is an HTML entity",
        "RFC 9562 section 6.2", "the designer's choice", "docs/http-api.md",
    ]
    for line in clean:
        assert not citations_in(line), line


def test_no_tracked_file_cites_a_document_or_issue_the_repository_lacks():
    offences = []
    for relative, text in tracked_text():
        if REPO_ROOT / relative == THIS_FILE:
            continue
        for number, what, line in citations_in(text):
            offences.append(f"{relative}:{number}: cites {what}: {line}")
    assert not offences, (
        f"{len(offences)} line(s) cite something the repository does not contain; say it in place or "
        "point to docs/<page>.md:\n" + "\n".join(offences)
    )


@cache
def tracked_text() -> tuple[tuple[str, str], ...]:
    """(path relative to the repository, text) of every tracked text file, read once for all tests."""
    texts = ((path.relative_to(REPO_ROOT).as_posix(), text_of(path)) for path in tracked_files())
    return tuple((relative, text) for relative, text in texts if text is not None)


def dangling_names(pattern: re.Pattern[str], exists) -> list[str]:
    """`path:line: name` for every match of `pattern` in a tracked file for which `exists(name)` is false."""
    found = []
    for relative, text in tracked_text():
        for number, line in enumerate(text.splitlines(), start=1):
            found += [f"{relative}:{number}: {name}" for name in pattern.findall(line) if not exists(name)]
    return found


DOCS_POINTER = re.compile(r"\b(docs/[\w.-]+\.(?:md|json))")


def test_every_docs_page_a_file_points_to_exists():
    dangling = dangling_names(DOCS_POINTER, lambda page: (REPO_ROOT / page).is_file())
    assert not dangling, "pointers to pages docs/ does not have:\n" + "\n".join(dangling)


REPO_PATH = re.compile(r"(?<![\w/.-])((?:client|daemon|backend|tests|systemd)/[\w/.-]+"
                       r"\.(?:py|pyx|toml|txt|js|ts|json|md))\b")


def test_every_repository_path_a_file_names_exists():
    """A comment or page naming `daemon/export/exporter.py` must still be right after files move."""
    dangling = dangling_names(REPO_PATH, lambda named: (REPO_ROOT / named).exists())
    assert not dangling, "paths that do not exist in the repository:\n" + "\n".join(dangling)
