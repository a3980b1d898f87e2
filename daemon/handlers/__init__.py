"""The handler registry: protocol command -> plain function `(ctx, args) -> result`.

Adding a command is one module here plus one line below. Handlers do no
socket I/O; the server's error boundary turns what they raise into replies.
"""

from __future__ import annotations

from . import (
    catalog,
    config_get,
    config_set,
    emit,
    export,
    history,
    mode,
    preview,
    purge,
    rotate,
    schema,
    shutdown,
    status,
    sync,
    upload,
)

REGISTRY = {
    "status": status.handle,
    "config.get": config_get.handle,
    "config.set": config_set.handle,
    "schema": schema.handle,
    "emit": emit.handle,
    "export": export.handle,
    "preview": preview.handle,
    "shutdown": shutdown.handle,
    "upload": upload.handle,
    "sync": sync.handle,
    "mode": mode.handle,
    "rotate": rotate.handle,
    "history": history.handle,
    "purge": purge.handle,
    "catalog": catalog.handle,
}

# Commands that may take long: run on a worker thread so `status` keeps answering.
BACKGROUND = frozenset({"export", "preview", "upload", "sync", "rotate", "purge"})
