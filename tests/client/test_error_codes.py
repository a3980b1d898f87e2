"""client/contracts/errors.py is the one table of the codes a control reply or a CLI error may carry."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import branchpy_telemetry.backend
import branchpy_telemetry.client
import branchpy_telemetry.daemon
from branchpy_telemetry.client.contracts import errors
from branchpy_telemetry.client.contracts.errors import ERROR_CLASSES, EXIT_USAGE, TelemetryError
from branchpy_telemetry.client.contracts.protocol import error_reply
from branchpy_telemetry.client.thin.ipc import error_from_reply

ROOT = Path(__file__).resolve().parents[2]
# Raised by `daemon install`, `backend install` and `backend serve` on this machine, never in a reply.
LOCAL_ONLY_CODES = {"service_install_failed", "cannot_listen"}


def every_error_class_in_the_package() -> set[type]:
    for package in (branchpy_telemetry.client, branchpy_telemetry.daemon, branchpy_telemetry.backend):
        modules = list(pkgutil.walk_packages(package.__path__, package.__name__ + "."))
        assert len(modules) > 10, package.__name__
        for module in modules:
            if not module.name.endswith("__main__"):
                importlib.import_module(module.name)
    found, pending = set(), [TelemetryError]
    while pending:
        for sub in pending.pop().__subclasses__():
            if sub.__module__.startswith("branchpy_telemetry.") and sub not in found:
                found.add(sub)
                pending.append(sub)
    return found | {TelemetryError}


def test_every_error_class_of_the_product_is_in_the_one_table():
    strays = {f"{c.__module__}.{c.__name__}" for c in every_error_class_in_the_package() - set(ERROR_CLASSES)}
    assert strays == set(), "define TelemetryError subclasses in client/contracts/errors.py"
    codes = [cls.code for cls in ERROR_CLASSES]
    assert len(codes) == len(set(codes)), "one class per code"
    assert errors.EXIT_CODE_BY_ERROR_CODE == {cls.code: cls.exit_code for cls in ERROR_CLASSES}


def test_a_reply_code_comes_back_as_its_class_with_its_exit_code():
    exc = error_from_reply(error_reply("r1", "catalog_invalid", "catalog x: not valid TOML"))
    assert isinstance(exc, errors.CatalogInvalidError) and exc.exit_code == EXIT_USAGE


def test_the_bridge_documentation_lists_every_code_a_reply_may_carry():
    text = (ROOT / "docs" / "bridge-protocol.md").read_text()
    table = text.split("### Error codes", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([a-z_]+)`", "\n".join(
        line.split("|")[1] for line in table.splitlines() if line.startswith("| `"))))
    codes = {cls.code for cls in ERROR_CLASSES}
    assert documented <= codes, f"documented but not a code: {sorted(documented - codes)}"
    assert codes - documented == LOCAL_ONLY_CODES, f"not documented: {sorted(codes - documented)}"
