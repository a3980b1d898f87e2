"""branchpy_telemetry.client: the contracts shared by every part, and the emitter.

    from branchpy_telemetry.client import emit, track

The emitter is imported on first use (PEP 562 `__getattr__`), not when the
package is: thin clients (`branchpy telemetry status`, the bridge) import
this package too and must start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Emitter", "build_event", "emit", "emitter_stats", "track", "write_event"]

if TYPE_CHECKING:
    from .emitter import Emitter, build_event, emit, emitter_stats, write_event
    from .tracking import track


def __getattr__(name: str) -> Any:
    if name == "track":
        from .tracking import track

        return track
    if name in __all__:
        from . import emitter

        return getattr(emitter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
