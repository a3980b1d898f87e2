"""The rules that keep the layers apart, checked on every import in client/, daemon/ and backend/.

Every module belongs to one group (GROUP_BY_PATH, by its folder in this repository); a group may import
only itself and the groups ALLOWED names. Imports are read with `ast` from the source — absolute
(`from branchpy_telemetry.daemon.delivery.outbox import Outbox`, `import branchpy_telemetry.backend`) and
relative (`from ..client.schema import …`, `from . import catalog`), at the top of a module or inside a
function, `TYPE_CHECKING` blocks included (a type-only import still couples two layers). The rules and
the groups are explained in docs/architecture.md ("Layer rules").

An import that breaks a rule today is listed in EXCEPTIONS with the reason it exists; a new one fails
this test. A module in a new folder needs an entry in GROUP_BY_PATH (the test says which are missing).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "branchpy_telemetry"
SOURCE_FOLDERS = ("client", "daemon", "backend")
SKIPPED_FOLDERS = ("client/vscode/",)  # the Node client: no Python

CONTRACTS = "client.contracts"  # what both ends share: formats, rules, protocol, errors, config, paths
INFRA = "client.infra"  # plumbing both ends use, no contract
EMITTER = "client.emitter"  # what runs inside BranchPy: emit()/track() and the spool protocol
THIN = "client.thin"  # the thin clients: the CLI, the VS Code bridge, finding/starting the daemon
DAEMON_MAIN = "daemon.main"  # the daemon's entry point: wires every part together
DAEMON_STATE = "daemon.state"  # install-wide state every part reads: counters, identity
CONTROL = "daemon.control"  # control plane: sockets, the request loop, command handlers
EXPORT = "daemon.export"  # export pipeline: sources -> sanitized, size-capped package files
DELIVERY = "daemon.delivery"  # outbox, upload, receipts, review gate, budget, consent
SCHEDULING = "daemon.scheduling"  # auto mode, housekeeping, rotation and retention policies
BACKEND = "backend"  # the HTTP server: app, API blueprints, auth, limits, CLI, dashboard
SINKS = "backend.sinks"  # storage behind one contract (SQLite, MySQL, memory, composite)

# Path -> group. A path ending in "/" covers every module under that folder: the folder tree is the
# architecture, so a module's folder says its group.
GROUP_BY_PATH: dict[str, str] = {
    "client/contracts/": CONTRACTS,
    "client/infra/": INFRA,
    "client/emitter/": EMITTER,
    "client/__init__.py": EMITTER,  # the package exposes emit/track, imported from the emitter on first use
    "client/thin/": THIN,
    "daemon/__init__.py": DAEMON_MAIN,
    "daemon/main.py": DAEMON_MAIN,
    "daemon/counters.py": DAEMON_STATE,
    "daemon/identity.py": DAEMON_STATE,
    "daemon/control/": CONTROL,
    "daemon/export/": EXPORT,
    "daemon/export/_export_scan.pyx": EXPORT,  # Cython, not parsed; aggregates and block_proof import it
    "daemon/delivery/": DELIVERY,
    "daemon/scheduling/": SCHEDULING,
    "backend/sinks/": SINKS,
    "backend/": BACKEND,
}

# Group -> the other groups it may import (every group may import itself).
ALLOWED: dict[str, frozenset[str]] = {
    INFRA: frozenset(),
    CONTRACTS: frozenset({INFRA}),
    EMITTER: frozenset({CONTRACTS, INFRA}),
    THIN: frozenset({CONTRACTS, INFRA, EMITTER}),  # `branchpy telemetry emit` writes through the emitter
    # the daemon reads and rotates the spool (the emitter's protocol) and emits through the emitter
    DAEMON_STATE: frozenset({CONTRACTS, INFRA}),
    EXPORT: frozenset({CONTRACTS, INFRA, EMITTER, DAEMON_STATE}),
    DELIVERY: frozenset({CONTRACTS, INFRA, EMITTER, DAEMON_STATE, EXPORT}),
    SCHEDULING: frozenset({CONTRACTS, INFRA, EMITTER, DAEMON_STATE, EXPORT, DELIVERY}),
    CONTROL: frozenset({CONTRACTS, INFRA, EMITTER, DAEMON_STATE, EXPORT, DELIVERY, SCHEDULING}),
    DAEMON_MAIN: frozenset({CONTRACTS, INFRA, EMITTER, DAEMON_STATE, EXPORT, DELIVERY, SCHEDULING, CONTROL}),
    SINKS: frozenset({CONTRACTS, INFRA}),
    BACKEND: frozenset({CONTRACTS, INFRA, SINKS}),
}

# (importing module, imported module) -> why this import breaks a rule today. Each one is a debt:
# remove the entry when the import goes (the last test below says when one is no longer needed).
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("client/infra/unit_text.py", "client/contracts/errors.py"):
        "ServiceInstallError subclasses the shared TelemetryError so the CLIs print code, message and hint",
    ("backend/local_stack.py", "client/thin/daemon_launcher.py"):
        "`branchpy-telemetry-backend up` is also a thin client: it starts the per-user daemon and hands it "
        "the local ingest key over the control socket",
    ("backend/local_stack.py", "client/thin/ipc.py"):
        "`up` hands the started daemon the local ingest key through the thin clients' control client",
    ("backend/service_units.py", "client/__init__.py"):
        "imports the package only for its folder (__file__), which the systemd unit must be able to read",
    ("backend/service_units.py", "daemon/__init__.py"):
        "imports the package only for its folder (__file__), which the systemd unit must be able to read",
}


def group_of(path: str) -> str | None:
    """The group of a module path (its own entry, else the longest folder entry that holds it)."""
    if path in GROUP_BY_PATH:
        return GROUP_BY_PATH[path]
    folders = [key for key in GROUP_BY_PATH if key.endswith("/") and path.startswith(key)]
    return GROUP_BY_PATH[max(folders, key=len)] if folders else None


def source_modules() -> dict[str, Path]:
    """Every Python module of the product: its path relative to the repository -> the file."""
    modules = {}
    for folder in SOURCE_FOLDERS:
        for file in sorted((ROOT / folder).rglob("*.py")):
            path = file.relative_to(ROOT).as_posix()
            if not path.startswith(SKIPPED_FOLDERS):
                modules[path] = file
    return modules


def dotted_name(path: str) -> str:
    """`daemon/control/handlers/emit.py` -> `branchpy_telemetry.daemon.control.handlers.emit`
    (a package: its folder's name)."""
    parts = path.removesuffix(".py").removesuffix(".pyx").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def module_index(paths) -> dict[str, str]:
    """Dotted name -> path, for every known module (the compiled `_export_scan` included)."""
    return {dotted_name(path): path for path in [*paths, *(k for k in GROUP_BY_PATH if k.endswith(".pyx"))]}


def imported_modules(source: str, dotted: str, is_package: bool, index: dict[str, str]
                     ) -> list[tuple[str, int]]:
    """Every (module path, line) a module's source imports from the product, relative imports resolved.

    `import a.b.c` names the longest known module of `a.b.c`; `from X import y` names `X.y` when that is
    a module (`from . import catalog`), else `X` (y is a name defined in X)."""
    package = dotted if is_package else dotted.rpartition(".")[0]
    found: list[tuple[str | None, int]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(resolve(alias.name, index), node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)] + ([node.module] if node.module else [])
                module = ".".join(parts)
            else:
                module = node.module or ""
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                target = index[submodule] if submodule in index else resolve(module, index)
                found.append((target, node.lineno))
    return [(path, line) for path, line in found if path is not None]


def resolve(name: str, index: dict[str, str]) -> str | None:
    """The module path a dotted name lives in (its longest known prefix); None outside the product."""
    while name.startswith(PACKAGE + "."):
        if name in index:
            return index[name]
        name = name.rpartition(".")[0]
    return None


def import_edges() -> dict[tuple[str, str], int]:
    """(importing path, imported path) -> the first line of that import, for every product import."""
    modules = source_modules()
    index = module_index(modules)
    edges: dict[tuple[str, str], int] = {}
    for path, file in modules.items():
        source = file.read_text(encoding="utf-8")
        for target, line in imported_modules(source, dotted_name(path), file.name == "__init__.py", index):
            if target != path:
                edges.setdefault((path, target), line)
    return edges


def breaks_rule(importer: str, imported: str) -> bool:
    source, target = group_of(importer), group_of(imported)
    return source != target and target not in ALLOWED[source]


# --- the tests ------------------------------------------------------------------------------------
def test_every_module_has_a_group_and_every_group_has_rules():
    modules = source_modules()
    unmapped = sorted(path for path in modules if group_of(path) is None)
    assert not unmapped, f"add these modules to GROUP_BY_PATH in {__file__}: {unmapped}"
    gone = sorted(key for key in GROUP_BY_PATH
                  if not key.endswith("/") and key not in modules and not (ROOT / key).is_file())
    assert not gone, f"GROUP_BY_PATH names modules that no longer exist: {gone}"
    assert set(GROUP_BY_PATH.values()) == set(ALLOWED)
    assert all(allowed <= set(ALLOWED) for allowed in ALLOWED.values())


def test_no_import_crosses_a_layer_rule():
    broken = [f"{importer}:{line} imports {imported} ({group_of(importer)} may not import "
              f"{group_of(imported)})"
              for (importer, imported), line in sorted(import_edges().items())
              if breaks_rule(importer, imported) and (importer, imported) not in EXCEPTIONS]
    assert not broken, "layer rules (docs/architecture.md):\n" + "\n".join(broken)


def test_every_exception_is_still_an_import_that_breaks_a_rule():
    edges = import_edges()
    stale = [pair for pair in EXCEPTIONS if pair not in edges or not breaks_rule(*pair)]
    assert not stale, f"remove these from EXCEPTIONS (the import is gone or now allowed): {stale}"


def test_the_contracts_never_import_the_daemon_the_backend_or_the_thin_clients():
    """The headline rules, spelled out (ALLOWED implies them; this keeps them from being relaxed)."""
    daemon_or_backend = {DAEMON_MAIN, DAEMON_STATE, CONTROL, EXPORT, DELIVERY, SCHEDULING, BACKEND, SINKS}
    assert not ALLOWED[CONTRACTS] & (daemon_or_backend | {THIN, EMITTER})
    assert ALLOWED[EMITTER] <= {CONTRACTS, INFRA}
    assert not ALLOWED[THIN] & daemon_or_backend
    assert not ALLOWED[BACKEND] & (daemon_or_backend - {SINKS})
    assert not any(group in ALLOWED[g] for g in (DAEMON_MAIN, DAEMON_STATE, CONTROL, EXPORT, DELIVERY,
                                                 SCHEDULING) for group in (BACKEND, SINKS))


def test_imports_are_resolved_in_every_form():
    """Absolute and relative imports, `import pkg`, `from . import mod` and lazy imports all count."""
    index = module_index(["client/contracts/errors.py", "client/__init__.py", "daemon/__init__.py",
                          "daemon/delivery/outbox.py", "daemon/control/handlers/__init__.py",
                          "daemon/control/handlers/emit.py", "backend/__init__.py", "backend/app.py"])
    source = (
        "import os\n"
        "import branchpy_telemetry.backend.app\n"
        "from branchpy_telemetry.client.contracts.errors import UsageError\n"
        "from ...delivery.outbox import Outbox\n"
        "from . import emit\n"
        "from .... import client\n"
        "def lazy():\n"
        "    from ....backend import app\n"
    )
    found = imported_modules(source, "branchpy_telemetry.daemon.control.handlers.status", False, index)
    assert found == [("backend/app.py", 2), ("client/contracts/errors.py", 3),
                     ("daemon/delivery/outbox.py", 4), ("daemon/control/handlers/emit.py", 5),
                     ("client/__init__.py", 6), ("backend/app.py", 8)]
