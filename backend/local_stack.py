"""`branchpy-telemetry-backend up`: the whole local stack in one command.

Starts the backend on the embedded SQLite default (or `--db`), makes sure
this user has a local ingest key (handed to the daemon through its
`config.set` command, so `upload` works) and a read key (for the
dashboard), starts the daemon if none runs, prints the dashboard URL and
the next commands to try, then serves in the foreground until Ctrl-C.

The two keys are kept, readable only by this user, in
`paths.local_backend_keys_file` (`<config dir>/local-backend.json`), so running `up` again reuses them.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import structlog

from branchpy_telemetry.backend.auth import generate_key, hash_key
from branchpy_telemetry.backend.settings import BackendSettings
from branchpy_telemetry.backend.sinks.base import Sink
from branchpy_telemetry.client.contracts.errors import TelemetryError
from branchpy_telemetry.client.contracts.paths import TelemetryPaths, ensure_private_dir, resolve_paths
from branchpy_telemetry.client.contracts.timewindow import utcnow
from branchpy_telemetry.client.infra.atomic_write import write_atomic

log = structlog.get_logger("backend.up")


def cmd_up(args, settings: BackendSettings) -> int:
    from branchpy_telemetry.backend.app import create_app, open_configured_sink
    from branchpy_telemetry.backend.wsgi_server import ServerLimits, serve, stop_on_signals

    paths = resolve_paths()
    if settings.catalog is None:  # store by the catalog the daemon exports by
        from branchpy_telemetry.client.contracts.config import load_config

        settings = msgspec.structs.replace(settings, catalog=load_config(paths.config_file).telemetry.catalog)
    sink = open_configured_sink(settings)
    stop_on_signals()
    try:
        from branchpy_telemetry.backend.cli import announce_schema_changes

        announce_schema_changes(sink)
        sink.migrate()
        keys = ensure_local_keys(sink, paths)
        app = create_app(settings, sink)

        def announce(host: str, port: int) -> None:
            base = f"http://{host}:{port}"
            daemon_note = connect_daemon(paths, f"{base}/api/telemetry", keys["ingest"],
                                         start=not args.no_daemon)
            print(render_welcome(base, keys["read"], daemon_note, paths), flush=True)
            log.info("up.listening", url=base, sink=sink.kind)

        serve(app, host=args.host, port=args.port, threads=args.workers,
              max_body_bytes=settings.max_upload_bytes, limits=ServerLimits.from_settings(settings),
              on_ready=announce)
    except KeyboardInterrupt:
        log.info("up.stopped")
    finally:
        sink.close()
    return 0


def ensure_local_keys(sink: Sink, paths: TelemetryPaths) -> dict[str, str]:
    """Reuse this user's stored local keys if the database still knows them;
    otherwise create fresh ones (an ingest key and a read key)."""
    keys_file = paths.local_backend_keys_file
    stored = _read_keys(keys_file)
    keys: dict[str, str] = {}
    for scope in ("ingest", "read"):
        key = stored.get(scope)
        record = sink.find_api_key(hash_key(key)) if key else None
        if record is None or record.revoked_at or record.scope != scope:
            key, record = generate_key(scope, "local stack (branchpy-telemetry-backend up)", utcnow())
            sink.add_api_key(record)
            log.info("up.key_created", key_id=record.key_id, scope=scope)
        keys[scope] = key
    if keys != stored:
        _write_private(keys_file, json.dumps(keys, indent=2) + "\n")
    return keys


def connect_daemon(paths: TelemetryPaths, endpoint: str, ingest_key: str, *, start: bool) -> str:
    """Point the daemon at this backend (persisted in the user's config)."""
    from branchpy_telemetry.client.thin.daemon_launcher import require_daemon
    from branchpy_telemetry.client.thin.ipc import open_control_client

    try:
        require_daemon(paths, start=start)
        with open_control_client(paths, timeout=5.0) as client:
            client.call("config.set", {"key": "telemetry.endpoint", "value": endpoint})
            client.call("config.set", {"key": "telemetry.api_key", "value": ingest_key})
            status = client.call("status")
    except TelemetryError as exc:
        return f"daemon: not connected ({exc.message}); {exc.hint or ''}".rstrip("; ")
    return f"daemon: running (pid {status.get('pid')}), uploads go to {endpoint}"


def render_welcome(base: str, read_key: str, daemon_note: str, paths: TelemetryPaths) -> str:
    return "\n".join([
        "BranchPy telemetry — local stack is up",
        f"  backend:   {base}/api/telemetry   (health: {base}/api/telemetry/health)",
        f"  dashboard: {base}/dashboard#key={read_key}",
        f"  {daemon_note}",
        f"  config:    {paths.config_file}",
        "",
        "Try, in another terminal:",
        "  .venv/bin/branchpy telemetry emit --category command --name analyze --duration-ms 412",
        "  .venv/bin/branchpy telemetry export --output rc-metrics.json",
        "  .venv/bin/branchpy telemetry preview rc-metrics.json",
        "  .venv/bin/branchpy telemetry upload --file rc-metrics.json",
        "",
        "Ctrl-C stops the backend (the daemon exits by itself when idle in manual mode).",
    ])


def _read_keys(keys_file: Path) -> dict[str, str]:
    try:
        data = json.loads(keys_file.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def _write_private(path: Path, text: str) -> None:
    """0600 in a 0700 folder, atomically (the file holds the local keys)."""
    ensure_private_dir(path.parent)
    write_atomic(path, text.encode())
