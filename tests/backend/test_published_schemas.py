"""The generated contract files under docs/ are exactly what the code builds now, so they cannot drift."""

from __future__ import annotations

import json
from pathlib import Path

from branchpy_telemetry.backend import published_schemas
from branchpy_telemetry.backend.openapi import build_openapi
from branchpy_telemetry.client.contracts.schema import package_json_schema

DOCS = Path(__file__).resolve().parents[2] / "docs"
REGENERATE = "python -m branchpy_telemetry.backend.published_schemas docs"


def test_committed_documents_equal_what_the_generator_writes_now():
    stale = published_schemas.stale_files(DOCS)
    assert stale == [], f"docs/{', docs/'.join(stale)} out of date; regenerate: {REGENERATE}"


def test_the_documents_are_the_ones_the_code_serves():
    """openapi.json is what GET /openapi.json serves; package.schema.json what `schema` prints."""
    assert json.loads((DOCS / "openapi.json").read_text()) == build_openapi()
    assert json.loads((DOCS / "package.schema.json").read_text()) == package_json_schema()


def test_the_catalog_schema_accepts_the_bundled_catalog_and_refuses_an_unknown_key():
    import tomllib

    import jsonschema

    from branchpy_telemetry.client.contracts.catalog import BUNDLED_CATALOG

    schema = json.loads((DOCS / "catalog.schema.json").read_text())
    catalog = tomllib.loads(BUNDLED_CATALOG.read_text())
    jsonschema.validate(catalog, schema)
    catalog["event"][0]["attrs"]["files"]["maximum"] = 3  # a typo of `max`
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(catalog))
    assert errors, "an unknown key in an attribute declaration must not validate"


def test_write_then_check_and_a_stale_file_is_named(tmp_path, capsys):
    assert published_schemas.main([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(published_schemas.DOCUMENTS)
    assert published_schemas.main(["--check", str(tmp_path)]) == 0

    (tmp_path / "openapi.json").write_text("{}\n")
    (tmp_path / "catalog.schema.json").unlink()
    capsys.readouterr()
    assert published_schemas.main(["--check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "stale: " + str(tmp_path / "openapi.json") in err
    assert "stale: " + str(tmp_path / "catalog.schema.json") in err
    assert "package.schema.json" not in err
