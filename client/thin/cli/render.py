"""Output for people (aligned key/value lines) and for scripts (`--json`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Iterable
from typing import Any


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def print_pairs(pairs: Iterable[tuple[str, Any]]) -> None:
    rows = [(key, format_value(value)) for key, value in pairs]
    width = max((len(key) for key, _ in rows), default=0)
    for key, value in rows:
        sys.stdout.write(f"{key.ljust(width)}  {value}".rstrip() + "\n")


def format_value(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def format_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if hours or days:
        parts.append(f"{hours}h")
    if minutes or hours or days:
        parts.append(f"{minutes}m")
    parts.append(f"{secs}s")
    return " ".join(parts)


def print_table(header: Iterable[str], rows: Iterable[Iterable[Any]], *,
                align_right: Collection[int] = ()) -> None:
    """Columns under a header line; column numbers in `align_right` are right-aligned (numbers)."""
    cells = [list(header)] + [[format_value(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    for row in cells:
        parts = [cell.rjust(width) if i in align_right else cell.ljust(width)
                 for i, (cell, width) in enumerate(zip(row, widths, strict=True))]
        sys.stdout.write("  ".join(parts).rstrip() + "\n")
