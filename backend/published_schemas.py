"""The machine-readable contracts committed under docs/, generated from the code that enforces them.

    python -m branchpy_telemetry.backend.published_schemas docs          # rewrite docs/*.json
    python -m branchpy_telemetry.backend.published_schemas --check docs  # exit 1 if one is stale

- `openapi.json`: the HTTP API, as `GET /api/telemetry/openapi.json` serves it (backend/openapi.py);
- `package.schema.json`: the package, as `branchpy telemetry schema` and `GET /schema` publish it
  (the `TelemetryPackage` Struct in client/contracts/schema.py);
- `catalog.schema.json`: the structure of an event catalog file (the `CatalogFile` Struct in
  client/contracts/catalog.py), for editors that validate TOML against a JSON Schema.

Each document is the same dict the code builds, written as indented JSON with a final newline, so a
change to a Struct shows up as a diff of these files. tests/backend/test_published_schemas.py fails
when a committed file differs from what this module writes now.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def openapi_document() -> dict:
    from branchpy_telemetry.backend.openapi import build_openapi

    return build_openapi()


def package_schema_document() -> dict:
    from branchpy_telemetry.client.contracts.schema import package_json_schema

    return package_json_schema()


def catalog_schema_document() -> dict:
    from branchpy_telemetry.client.contracts.catalog import CATALOG_FORMAT, CatalogFile

    schema = msgspec.json.schema(CatalogFile)
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["title"] = f"BranchPy telemetry event catalog, format {CATALOG_FORMAT} (TOML)"
    schema["description"] = ("The structure of a catalog file. `branchpy telemetry catalog check FILE` "
                             "also checks names, patterns, expiry dates and attribute ranges; see "
                             "docs/catalog-format.md.")
    return schema


# file name under docs/ -> the function that builds its content
DOCUMENTS: dict[str, Callable[[], dict]] = {
    "openapi.json": openapi_document,
    "package.schema.json": package_schema_document,
    "catalog.schema.json": catalog_schema_document,
}


def render(document: dict) -> str:
    """The committed text of a document: 2-space JSON, keys in the order the code builds them."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def expected_files() -> dict[str, str]:
    """File name -> the text it must hold."""
    return {name: render(build()) for name, build in DOCUMENTS.items()}


def stale_files(folder: Path) -> list[str]:
    """The documents under `folder` that are missing or differ from what the code builds now."""
    stale = []
    for name, text in expected_files().items():
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def write_files(folder: Path) -> list[Path]:
    """Write every document into `folder` (created if needed); the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in expected_files().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m branchpy_telemetry.backend.published_schemas",
                                     description="Write the generated contract files (OpenAPI, package "
                                                 "and catalog JSON Schemas) into a folder, e.g. docs.")
    parser.add_argument("folder", type=Path, help="where to write them (the repository's docs folder)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 and name the files that are missing or stale")
    options = parser.parse_args(argv)
    if options.check:
        stale = stale_files(options.folder)
        for name in stale:
            print(f"stale: {options.folder / name}", file=sys.stderr)
        if stale:
            print(f"regenerate: python -m branchpy_telemetry.backend.published_schemas {options.folder}",
                  file=sys.stderr)
        return 1 if stale else 0
    for path in write_files(options.folder):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
