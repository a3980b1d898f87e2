"""The server stores by its own catalog (real `serve`, SQLite): what it does not declare is
dropped before anything is stored and counted in the upload's answer, so a client with a
newer catalog loses nothing else; fixed-format fields with another form are refused whole;
no error body repeats what was sent; `GET /catalog` publishes the catalog without a path."""

from __future__ import annotations

import sqlite3
import subprocess

import msgspec
import pytest
import requests

from branchpy_telemetry.client.contracts.schema import SanitizedEvent

from ..conftest import console_script
from .conftest import BASE_TS, make_package
from .live_backend import start_sqlite_backend

SERVER_CATALOG = """\
format = 1
id = "server"
revision = "2026.11.0"
[errors]
code_pattern = "^BP-E[0-9]{4}$"
[[event]]
category = "command"
name = "analyze"
description = "An analysis."
expires = "never"
owner = "core"
[event.attrs]
files = { type = "int", min = 0, max = 1000 }
mode = { type = "enum", values = ["fast", "full"] }
[[event]]
category = "feature"
name = "trial"
description = "A trial that ended."
expires = "2026-01-31"
owner = "core"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("catalog")
    catalog = home / "server-catalog.toml"
    catalog.write_text(SERVER_CATALOG)
    backend = start_sqlite_backend(home, catalog=str(catalog))
    yield backend
    backend.stop()


def upload(server, package: dict | bytes) -> requests.Response:
    body = package if isinstance(package, bytes) else msgspec.json.encode(package)
    return requests.post(server.api + "/upload", data=body, timeout=30,
                         headers={**server.headers("ingest"), "Content-Type": "application/json"})


def stored_rows(server) -> list[tuple]:
    with sqlite3.connect(server.db_url.removeprefix("sqlite:///")) as db:
        return db.execute("SELECT name, attrs, error_code FROM events").fetchall()


def event(i: int, name: str, category: str = "command", **fields) -> SanitizedEvent:
    ts = (BASE_TS.replace(microsecond=0)).isoformat().replace("+00:00", "") + f".{i:03d}Z"
    return SanitizedEvent(event_id=f"00000000-0000-4000-8000-{i:012x}", ts=ts, category=category,
                          source="cli", name=name, **fields)


def test_what_the_servers_catalog_does_not_declare_is_dropped_counted_and_never_stored(server):
    package = make_package(events=[
        event(1, "analyze", attrs={"files": 3, "mode": "fast"}),
        event(2, "analyze", attrs={"files": 3, "flag_json": True, "mode": "turbo"}),  # newer attrs
        event(3, "lint", attrs={"files": 1}),  # a command this server does not know yet
        event(4, "trial", category="feature"),  # its collection ended
        event(5, "analyze", status="error", error_code="E-LOCAL-42"),
    ])
    response = upload(server, msgspec.to_builtins(package))
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["accepted_events"] == 3 and answer["duplicate_events"] == 0
    assert answer["dropped"] == {"undeclared_event": 1, "expired_event": 1, "undeclared_attr": 1,
                                 "invalid_value": 2}
    rows = sorted(stored_rows(server))
    assert [name for name, _, _ in rows] == ["analyze"] * 3
    assert all(b"flag_json" not in attrs.encode() and "turbo" not in attrs for _, attrs, _ in rows)
    assert all(code is None for _, _, code in rows)
    assert "lint" not in response.text and "trial" not in response.text


def test_the_server_publishes_its_catalog_without_its_file_path(server):
    assert requests.get(server.api + "/catalog", timeout=10).status_code == 401
    answer = requests.get(server.api + "/catalog", headers=server.headers("read"), timeout=10)
    assert answer.status_code == 200
    catalog = answer.json()
    assert (catalog["id"], catalog["revision"]) == ("server", "2026.11.0") and "source" not in catalog
    assert [(e["category"], e["name"], e["expired"]) for e in catalog["events"]] == [
        ("command", "analyze", False), ("feature", "trial", True)]
    assert "server-catalog.toml" not in answer.text


FIXED_FORMAT_FIELDS = [
    ("/package_id", lambda p, v: p.__setitem__("package_id", v)),
    ("/governance_id", lambda p, v: p.__setitem__("governance_id", v)),
    ("/export_timestamp", lambda p, v: p.__setitem__("export_timestamp", v)),
    ("/branchpy_version", lambda p, v: p.__setitem__("branchpy_version", v)),
    ("/platform/os", lambda p, v: p["platform"].__setitem__("os", v)),
    ("/platform/os_release", lambda p, v: p["platform"].__setitem__("os_release", v)),
    ("/platform/arch", lambda p, v: p["platform"].__setitem__("arch", v)),
    ("/platform/python", lambda p, v: p["platform"].__setitem__("python", v)),
    ("/summary/events/0/event_id", lambda p, v: p["summary"]["events"][0].__setitem__("event_id", v)),
    ("/summary/events/0/ts", lambda p, v: p["summary"]["events"][0].__setitem__("ts", v)),
    ("/summary/events/0/session_id", lambda p, v: p["summary"]["events"][0].__setitem__("session_id", v)),
    ("/summary/events/0/correlation_id",
     lambda p, v: p["summary"]["events"][0].__setitem__("correlation_id", v)),
    ("/summary/events/0/error_hash", lambda p, v: p["summary"]["events"][0].__setitem__("error_hash", v)),
    ("/summary/window_from", lambda p, v: p["summary"].__setitem__("window_from", v)),
    ("/correlation_ids/0", lambda p, v: p.__setitem__("correlation_ids", [v])),
]


@pytest.mark.parametrize("pointer, place", FIXED_FORMAT_FIELDS, ids=[f[0] for f in FIXED_FORMAT_FIELDS])
@pytest.mark.parametrize("value", ["alice-laptop", "thesis_draft.docx", "10.0.0.12"])
def test_a_fixed_format_field_holding_anything_else_is_refused_whole_without_an_echo(server, pointer, place,
                                                                                     value):
    package = msgspec.to_builtins(make_package(3, seed=501))
    place(package, value)
    response = upload(server, package)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == {
        "code": "privacy_violation", "message": response.json()["error"]["message"],
        "hint": "export it again with a current client",
        "details": [{"pointer": pointer, "rule": "fixed_format"}]}
    assert value not in response.text


@pytest.mark.parametrize("mutate", [
    lambda p: p.__setitem__("alice_smith_notes", 1),  # an unknown field's name
    lambda p: p["summary"]["events"][0].__setitem__("category", "alice-smith"),  # an enum value
    lambda p: p["summary"]["events"][0].__setitem__("status", "alice-smith"),
    lambda p: p["summary"]["events"][0].__setitem__("source", "alice-smith"),
    lambda p: p["performance_metrics"].__setitem__("alice-smith", {"count": "alice-smith"}),
    lambda p: p["summary"]["events"][0]["attrs"].__setitem__("alice-smith", ["x"]),
], ids=["unknown field", "category", "status", "source", "aggregate key", "attrs key"])
def test_a_schema_error_never_repeats_a_name_or_value_that_was_sent(server, mutate):
    package = msgspec.to_builtins(make_package(2, seed=502))
    mutate(package)
    response = upload(server, package)
    assert response.status_code == 422, response.text
    assert "alice" not in response.text.lower()


def test_serve_refuses_an_invalid_catalog_with_the_problem_and_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('format = 1\nid = "x"\nrevision = "1"\n[[event]]\ncategory = "command"\nname = "a"\n'
                   'description = "d"\nexpires = "soon"\nowner = "o"\n')
    done = subprocess.run([console_script("branchpy-telemetry-backend"), "serve", "--port", "0",
                           "--db", f"sqlite:///{tmp_path / 'e.db'}", "--catalog", str(bad)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "catalog_invalid" in done.stderr and "event[0] command/a" in done.stderr
    assert "expires" in done.stderr and "Traceback" not in done.stderr
