"""How `client/contracts/error_vocabulary.txt` was made.

Run: python -m tests.client.error_vocabulary_source > FILE

The words that may stay in an error message's template are the words Python's
own standard library uses in the messages it raises, plus the operating
system's error strings: vocabulary any install shares, never a user's value.
A word qualifies when it appears in at least two distinct messages, is made of
2 to 20 lower-case ASCII letters (compared case-insensitively), and is not a
common given name. The file is shipped, not computed at run time, so every
install hashes the same template the same way.
"""

from __future__ import annotations

import ast
import collections
import os
import re
import sys
from pathlib import Path

# Given names that also occur as English words in messages are left out on purpose.
EXCLUDED = frozenset({"bob", "alice", "john", "mark", "will", "bill", "rose", "grace", "max", "ray"})


def stdlib_root() -> Path:
    return Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"


def message_words() -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for path in stdlib_root().rglob("*.py"):
        if {"test", "tests", "site-packages", "idlelib"} & set(path.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                for arg in node.exc.args:
                    for const in ast.walk(arg):
                        if isinstance(const, ast.Constant) and isinstance(const.value, str):
                            counts.update(set(_words(const.value)))
    for errno in range(1, 200):  # the OS's own error strings count whatever their frequency
        for word in set(_words(os.strerror(errno))):
            counts[word] += 2
    return counts


def _words(text: str) -> list[str]:
    return [w.lower() for w in re.findall(r"(?<![\w%{])[A-Za-z]{2,20}(?![\w}])", text)]


def generate() -> list[str]:
    return sorted(w for w, n in message_words().items() if n >= 2 and w not in EXCLUDED)


if __name__ == "__main__":
    print("\n".join(generate()))
