"""branchpy_telemetry.client: everything that is not the daemon or the backend.

    contracts/  what both ends share (catalog, privacy rules, schemas, protocol, config, paths)
    infra/      plumbing with no contract (atomic writes, file locks, logging)
    emitter/    what runs inside BranchPy: emit(), track(), the spool
    thin/       the thin clients: the CLI and the VS Code bridge
    vscode/     the Node client for VS Code extensions

BranchPy's code writes `from branchpy_telemetry.client import emit, track`.
Those two are the one re-export in the product, kept lazy on purpose (PEP 562
`__getattr__`): the thin clients import this package too and must start fast,
and importing the emitter eagerly doubled the CLI's start-up import time. They
are defined in client/emitter/emit.py and client/emitter/tracking.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["emit", "track"]

if TYPE_CHECKING:
    from branchpy_telemetry.client.emitter.emit import emit
    from branchpy_telemetry.client.emitter.tracking import track


def __getattr__(name: str) -> Any:
    if name == "track":
        from branchpy_telemetry.client.emitter.tracking import track

        return track
    if name == "emit":
        from branchpy_telemetry.client.emitter.emit import emit

        return emit
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
