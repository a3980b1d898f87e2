"""The handler registry: protocol command -> plain function `(ctx, args) -> result`.

Adding a command is one row in client/contracts/commands.py, one module here and one
line below; the registry must name exactly the table's commands (checked as
it is built). Handlers do no socket I/O; the server's error boundary turns
what they raise into replies.
"""

from __future__ import annotations

from branchpy_telemetry.client.contracts.commands import check_covers
from branchpy_telemetry.daemon.control.handlers import (
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
check_covers(REGISTRY, "the daemon's handler registry")
