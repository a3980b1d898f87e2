"""Size and shape limits: one place to read them, one place to change them.

Everything a process parses from a peer or a file it does not control is
bounded here: a control-socket request, a bridge line, a spool or extension
JSONL line, an uploaded package, the attrs of one event. Input past a limit
gets a clear error (`too_large`, `malformed_request`, `json_too_deep`,
`limit_exceeded`, naming the limit) or, for a spool line, is skipped and
counted; it never takes a process down. A conforming package is far inside
every limit: its JSON is 5 levels deep (package > summary > events > event >
attrs) and an event carries a few declared attrs with short names.
"""

from __future__ import annotations

# One control request (the JSON frame after the ZeroMQ envelope). Larger ones
# are refused by the client before sending and answered `too_large` by the daemon.
MAX_CONTROL_MESSAGE_BYTES = 1024 * 1024
# ZMQ_MAXMSGSIZE on the daemon's ROUTER: a peer sending a frame past this is
# disconnected by libzmq before the frame is buffered whole (a memory guard for
# clients that skip the client-side check; between the two limits they get `too_large`).
MAX_CONTROL_FRAME_BYTES = 4 * MAX_CONTROL_MESSAGE_BYTES
# Arrays/objects nested deeper than this in a control request, a bridge line or an
# uploaded body are refused (JSON decoders recurse; 1,000 levels crashed them).
MAX_JSON_DEPTH = 32
# One line on the bridge's stdin (newline excluded). A longer line is answered
# `too_large` and discarded as it is read, never held whole.
MAX_BRIDGE_LINE_BYTES = 1024 * 1024
# One spool or extension JSONL line, newline included. The emitter writes at
# most 64 KiB; a longer line is skipped and counted (`summary.skipped_lines`)
# while it is read, never held whole.
MAX_SPOOL_LINE_BYTES = 1024 * 1024
# Attributes on one event, and the length of one attribute's key (characters):
# emit()/track() keep the first MAX_ATTRS_PER_EVENT (the rest are counted in
# `emitter_stats()["dropped_attrs"]`), a catalog declares no more, and the server
# refuses a package past either (422 `limit_exceeded`).
MAX_ATTRS_PER_EVENT = 64
MAX_ATTR_KEY_LENGTH = 64
