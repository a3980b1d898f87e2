"""Every name is imported from the module that defines it, never through a module that imported it.

A re-export hides where a name lives: a reader who follows `from a import X` should land on X's
definition. The one exception is the public API BranchPy's code uses, `from
branchpy_telemetry.client import emit, track` (client/__init__.py says why it stays).
"""

from __future__ import annotations

import ast
import subprocess
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "branchpy_telemetry"
PUBLIC_API = {("branchpy_telemetry.client", "emit"), ("branchpy_telemetry.client", "track")}


def module_file(dotted: str) -> Path | None:
    relative = Path(*dotted.split(".")[1:])
    for candidate in (ROOT / relative.with_suffix(".py"), ROOT / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def defined_and_imported(path: Path) -> tuple[frozenset[str], frozenset[str]]:
    """The names a module defines (def, class, assignment) and the names it imports."""
    defined, imported = set(), set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            imported |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
    return frozenset(defined), frozenset(imported)


def python_files() -> list[Path]:
    listing = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, check=True, capture_output=True,
                             text=True).stdout.split()
    return [ROOT / name for name in listing if name.startswith(("client/", "daemon/", "backend/", "tests/"))]


def reexported_imports(files) -> list[str]:
    found = []
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                    and node.module.startswith(PACKAGE + ".")):
                continue
            source = module_file(node.module)
            if source is None:
                continue
            defined, imported = defined_and_imported(source)
            for alias in node.names:
                name = alias.name
                is_submodule = module_file(f"{node.module}.{name}") is not None
                if name in defined or is_submodule or (node.module, name) in PUBLIC_API:
                    continue
                if name in imported:
                    where = file.relative_to(ROOT) if file.is_relative_to(ROOT) else file
                    found.append(f"{where}:{node.lineno}: `{name}` through {node.module}")
    return found


def test_every_name_is_imported_from_its_defining_module():
    found = reexported_imports(python_files())
    assert not found, "import these from the module that defines them:\n" + "\n".join(found)


def test_the_check_sees_a_reexport(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from branchpy_telemetry.backend.sinks.sql_base import TracingCursor\n")
    assert len(reexported_imports([probe])) == 1 and "TracingCursor" in reexported_imports([probe])[0]
