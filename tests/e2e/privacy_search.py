"""Finding a sensitive value wherever it ended up: exported files, server answers, the database.

A value counts as found when any of its *forms* occurs, case-insensitively,
in the text searched or in that text folded the same way. The forms are the
value itself and the value folded: NFKC, look-alike separators mapped to
ASCII, invisible format characters removed, percent-encoding (any number of
layers, `%uXXXX` too) and HTML entities decoded. So `priya%40raman.dev` is
also looked for as `priya@raman.dev`, and `∕home∕tkimura∕diary.txt` as
`/home/tkimura/diary.txt`. This folding is written here, independently of the
product's own, so a gap in one is not hidden by the same gap in the other.

JSON documents are searched through their decoded strings (keys and values),
so an escaped form (`\\u0040`, `\\\\`) cannot slip past; strings that are
entirely a fixed format the system writes (UUIDs, lower-case hex ids,
`sha256:` hashes, timestamps) are left out, since no value of the corpus has
that form and random hex would otherwise make coincidental hits possible.
"""

from __future__ import annotations

import html
import re
import sqlite3
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

MIN_FORM_LENGTH = 5

_LOOKALIKES = str.maketrans({
    **dict.fromkeys("∕⁄／⧸╱⟋", "/"), **dict.fromkeys("＼⧵∖⧹╲⟍﹨", "\\"),
    **dict.fromkeys("∶꞉ː։׃︓﹕：፡⁚", ":"), **dict.fromkeys("∼～⁓〜˜῀", "~"),
    **dict.fromkeys("。｡﹒․．", "."), **dict.fromkeys("＠﹫", "@"),
})
_INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")
_PERCENT_U = re.compile(r"%u([0-9a-fA-F]{4})")
_FIXED_FORMAT = re.compile(
    r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}|sha256:[0-9a-f]{64}"
    r"|[0-9a-f]{64}|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)")


def fold(text: str) -> str:
    """The text as the rules should read it (see the module docstring), case-folded."""
    text = unicodedata.normalize("NFKC", text).translate(_LOOKALIKES)
    for _ in range(8):
        before = text
        text = html.unescape(unquote(_PERCENT_U.sub(lambda m: chr(int(m.group(1), 16)), text)))
        text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text).translate(_LOOKALIKES))
        if text == before:
            break
    return text.casefold()


def search_forms(value: str) -> tuple[str, ...]:
    forms = {value.casefold(), fold(value)}
    return tuple(sorted(f for f in forms if len(f) >= MIN_FORM_LENGTH))


@dataclass(frozen=True)
class Haystack:
    """Text to search, as it is and folded."""

    plain: str
    folded: str

    @classmethod
    def of(cls, texts: list[str]) -> Haystack:
        joined = "\n".join(texts)
        return cls(joined.casefold(), fold(joined))

    def holds(self, forms: tuple[str, ...]) -> bool:
        return any(f in self.plain or f in self.folded for f in forms)


def text_holds(text: str, forms: tuple[str, ...]) -> bool:
    plain = text.casefold()
    return any(f in plain for f in forms) or any(f in fold(text) for f in forms)


def iter_strings(obj: object, pointer: str = "") -> Iterator[tuple[str, str]]:
    """(JSON pointer, string) for every string value and every key of a decoded JSON document;
    a key is reported at the pointer of the object that holds it."""
    if isinstance(obj, str):
        yield pointer, obj
    elif isinstance(obj, dict):
        for key, child in obj.items():
            yield pointer, str(key)
            yield from iter_strings(child, f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(obj, list):
        for i, child in enumerate(obj):
            yield from iter_strings(child, f"{pointer}/{i}")


def searchable_strings(obj: object) -> list[str]:
    return [s for _, s in iter_strings(obj) if not _FIXED_FORMAT.fullmatch(s)]


def pointers_holding(obj: object, forms: tuple[str, ...]) -> list[str]:
    return [ptr for ptr, s in iter_strings(obj) if text_holds(s, forms)]


# --- the backend's database --------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    table: str
    column: str
    row: dict  # the whole row, for attribution (event_id, package_id)
    text: str


def database_cells(db_file: Path) -> list[Cell]:
    """Every column of every row of every table, as text (BLOBs decoded as UTF-8 with replacement)."""
    cells = []
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=30) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from sqlite_master
            columns = [d[0] for d in cursor.description]
            for values in cursor:
                row = dict(zip(columns, values, strict=True))
                for column, value in row.items():
                    if value is None:
                        continue
                    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                    cells.append(Cell(table, column, row, text))
    conn.close()
    return cells


def database_file_text(db_file: Path) -> str:
    """The raw bytes of the database and its WAL, as text: what a copy of the disk would show."""
    parts = []
    for path in (db_file, db_file.with_name(db_file.name + "-wal")):
        if path.exists():
            parts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)
