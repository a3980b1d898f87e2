"""branchpy_telemetry.client: the contracts shared by every part, and the emitter.

    from branchpy_telemetry.client import emit, track
"""

from .emitter import Emitter, build_event, emit, emitter_stats, write_event
from .tracking import track

__all__ = ["Emitter", "build_event", "emit", "emitter_stats", "track", "write_event"]
