"""The README's terminal transcripts, read as a test script.

A transcript is a ```text block of `$ command` lines, each followed by what it
prints. `shape(line)` turns a printed line of the README into a regular
expression that accepts the same line from another run: ids, hashes, numbers,
times, sizes and paths may differ; every word and every piece of punctuation
must be there. A token shortened with `…` matches any rest; a line that is
only `…` stands for any number of lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SKIP = "…"


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)


def section(title: str) -> str:
    """The README text under `## title`, up to the next `## ` heading."""
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def transcript(block: str) -> list[Step]:
    steps: list[Step] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append(Step(line[2:]))
        elif steps:
            steps[-1].expected.append(line)
    return steps


_TOKEN = re.compile(r"\S+|\s+")
_SIZE = re.compile(r"\b[0-9]+(?:\.[0-9]+)? (?:B|KiB|MiB|GiB)\b")
_SIZE_MARK = "QSIZEQ"  # letters only: untouched by escaping and by the number rule


def _generalize(text: str) -> str:
    """Escape `text`, with every number and every run of 4+ hex digits holding a digit free to differ."""
    out = []
    pos = 0
    for match in re.finditer(r"[0-9a-f]*[0-9][0-9a-f]*", text):
        out.append(re.escape(text[pos:match.start()]))
        token = match.group(0)
        out.append(r"[0-9a-f]+" if len(token) >= 4 else r"[0-9]+")  # an id's piece may be all digits
        pos = match.end()
    out.append(re.escape(text[pos:]))
    return "".join(out)


def _token_shape(token: str) -> str:
    if token.isspace():
        return r"\s+"
    if SKIP in token:  # shortened in the README: the rest may be anything
        return _generalize(token[:token.index(SKIP)]) + r"\S*"
    lead = re.match(r"^[(`]*", token).group(0)
    body = token[len(lead):]
    if body.startswith(("/", "~/")):  # a path: this run's own
        trail = re.search(r"[)`,:]*$", body).group(0)
        return re.escape(lead) + r"\S+?" + re.escape(trail)
    return _generalize(token)


def shape(line: str) -> re.Pattern:
    """The regular expression a printed line of another run must match in full."""
    marked = _SIZE.sub(_SIZE_MARK, line)  # 1002 B and 1.1 KiB are the same kind of thing
    pattern = "".join(_token_shape(t) for t in _TOKEN.findall(marked))
    return re.compile(pattern.replace(_SIZE_MARK, r"[0-9]+(?:\.[0-9]+)?\ (?:B|KiB|MiB|GiB)"))


def match_output(expected: list[str], actual: list[str]) -> list[str]:
    """Problems (none: every expected line's shape is matched, in order, a `…` line skipping lines)."""
    i = 0
    skipping = False
    for want in expected:
        if want.strip() == SKIP:
            skipping = True
            continue
        pattern = shape(want)
        if skipping:
            while i < len(actual) and not pattern.fullmatch(actual[i]):
                i += 1
            skipping = False
        if i >= len(actual):
            return [f"missing a line shaped like {want!r} (printed: {actual!r})"]
        if not pattern.fullmatch(actual[i]):
            return [f"line {i + 1}: {actual[i]!r} is not shaped like {want!r}"]
        i += 1
    if i < len(actual) and not skipping:
        return [f"lines the README does not show: {actual[i:]!r}"]
    return []
