"""The outside services a test needs, as markers set from what the test uses.

Three markers name a service the test run does not start by itself:
`mysql` (the MariaDB server at BRANCHPY_TEST_MYSQL_URL, or a `mariadbd` a test starts of its own),
`browser` (headless Chromium) and `galera` (a 3-node MariaDB Galera cluster a test starts).
`pytest -m "not mysql and not browser and not galera"` runs everything else with none of them.

A test gets a marker, at collection, from:
- a fixture it uses, directly or through another fixture (`SERVICE_FIXTURES`);
- the folder it lives in, for tests that start the service themselves (`SERVICE_FOLDERS`);
- a fixture parameter that names a MySQL-backed sink (`sink_kind_params`);
- a mark written on it, for the few tests that call a service helper in their body.

Every helper that reaches a service calls `require_service(marker)`: a test that reaches a
service without carrying its marker fails and says which marker to add, so the markers
cannot silently drift from what the tests do.
"""

from __future__ import annotations

from pathlib import Path

import pytest

MYSQL, BROWSER, GALERA = "mysql", "browser", "galera"

# fixture name -> the service it reaches (a test using one, even through another fixture, needs it)
SERVICE_FIXTURES: dict[str, str] = {
    "mysql_database": MYSQL,  # a fresh database on the MariaDB server (tests/backend/conftest.py)
    "mysql_admin": MYSQL,  # a connection to that server with no database selected
    "mysql_url": MYSQL,
    "mysql_sink": MYSQL,
    "composite_sink": MYSQL,  # SQLite primary + MySQL secondary
    "readme_database": MYSQL,  # the README walkthrough's database on that server (tests/e2e)
    "mariadb": MYSQL,  # a mariadbd the test module starts itself (tests/backend/own_mariadb.py)
    "browser": BROWSER,  # headless Chromium (tests/backend/browser.py)
    "galera_cluster": GALERA,  # tests/conftest.py
}

# folder under tests/ -> the service every test in it starts or reaches
SERVICE_FOLDERS: dict[str, str] = {
    "galera": GALERA,  # a Galera cluster and a plain mariadbd, started by the tests themselves
}

# sink kinds (tests/backend/conftest.py SINK_KINDS) stored in MySQL
MYSQL_SINK_KINDS = frozenset({"mysql", "composite"})

TESTS_DIR = Path(__file__).parent

_running: pytest.Item | None = None


def services_used(item: pytest.Item) -> set[str]:
    """The service markers `item` needs from its fixtures and its folder (marks written on it aside)."""
    fixtures = getattr(item, "fixturenames", ())
    needed = {SERVICE_FIXTURES[name] for name in fixtures if name in SERVICE_FIXTURES}
    try:
        folder = Path(item.path).relative_to(TESTS_DIR).parts[0]
    except ValueError:
        folder = ""
    if folder in SERVICE_FOLDERS:
        needed.add(SERVICE_FOLDERS[folder])
    return needed


def mark_services(items: list[pytest.Item]) -> None:
    """Adds the service markers each collected test needs (pytest_collection_modifyitems)."""
    for item in items:
        for marker in sorted(services_used(item)):
            if item.get_closest_marker(marker) is None:
                item.add_marker(marker)


def sink_kind_params(kinds) -> list:
    """Fixture params for sink kinds, the MySQL-backed ones carrying the `mysql` marker."""
    return [pytest.param(kind, marks=pytest.mark.mysql) if kind in MYSQL_SINK_KINDS else kind
            for kind in kinds]


def set_running(item: pytest.Item | None) -> None:
    """Records the test being run (its setup, call and teardown) for `require_service`."""
    global _running
    _running = item


def require_service(marker: str) -> None:
    """Fails the running test if it reaches the service `marker` names without carrying the marker."""
    item = _running
    if item is not None and item.get_closest_marker(marker) is None:
        pytest.fail(f"{item.nodeid} reaches the {marker} service but is not marked `{marker}`: use a fixture "
                    f"tests/service_markers.py lists, or add @pytest.mark.{marker}", pytrace=False)
