"""The server's privacy check (DESIGN §7), fast on the common, clean path.

The rules are the client's (`check_string`, `is_content_key`; never
re-implemented here) and the authority on *where* a package breaks them is
`find_violations`. That walk builds a JSON pointer for every value it
visits, which costs about a second on a 5 MB package. Nearly every upload
is clean, so this gate first collects each distinct string (values and
keys) and each distinct key of an `attrs` mapping, checks those once with
the same rule functions, and only when one fails runs `find_violations` for
the pointers. Being at least as strict as that walk (every string it checks
is checked here; the `attrs` key rule is applied to the same keys) is
checked by tests/backend/test_api_privacy_gate.py.
"""

from __future__ import annotations

from branchpy_telemetry.client.privacy import check_string, find_violations, is_content_key


def find_package_violations(raw: object) -> list:
    """`find_violations(raw)`, answered without the pointer walk when clean."""
    if _looks_clean(raw):
        return []
    return find_violations(raw)


def _looks_clean(raw: object) -> bool:
    strings: set = set()
    attrs_keys: set = set()
    add = strings.add
    stack: list[tuple[object, bool]] = [(raw, False)]  # (value, is it the value of an "attrs" key)
    push = stack.append
    while stack:
        value, under_attrs = stack.pop()
        kind = type(value)
        if kind is dict:
            if under_attrs:
                attrs_keys.update(value)
            for key, child in value.items():
                add(key)
                child_kind = type(child)
                if child_kind is str:
                    add(child)
                elif child_kind is dict or child_kind is list:
                    push((child, key == "attrs"))
        elif kind is list:
            for child in value:
                child_kind = type(child)
                if child_kind is str:
                    add(child)
                elif child_kind is dict or child_kind is list:
                    push((child, False))
        elif kind is str:
            add(value)
        elif isinstance(value, (dict, list, str)):  # subclasses: not from a JSON decoder
            return False
    for text in strings:
        if check_string(text if type(text) is str else str(text)) is not None:
            return False
    return not any(is_content_key(key if type(key) is str else str(key)) for key in attrs_keys)
