"""`branchpy-telemetry-backend up | serve | keys create/list/revoke | purge | migrate | install`.

Every command and option: docs/cli.md.

Results go to stdout (the new key alone on the last line of `keys create`),
logs to stderr. Exit codes: 0 ok, 1 failed, 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import msgspec
import structlog

from branchpy_telemetry.backend.auth import SCOPES, generate_key
from branchpy_telemetry.backend.local_stack import cmd_up
from branchpy_telemetry.backend.service_install import add_install_parser
from branchpy_telemetry.backend.settings import BackendSettings, load_backend_settings, parse_targets
from branchpy_telemetry.backend.sinks.base import Sink, SinkError
from branchpy_telemetry.client.contracts.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, TelemetryError
from branchpy_telemetry.client.contracts.timewindow import format_ts, parse_duration, utcnow
from branchpy_telemetry.client.infra.logging_setup import (
    LOG_FORMATS,
    LOG_LEVELS,
    default_level,
    setup_logging,
)

log = structlog.get_logger("backend.cli")
# command-line flags that set a BackendSettings field of the same name
SETTING_FLAGS = ("connection_limit", "keepalive_timeout_s", "header_timeout_s", "body_timeout_s",
                 "body_min_rate", "trusted_proxy", "secondary_backlog", "catalog", "slo_success_target",
                 "slo_p95_target_ms", "slo_p95_targets", "slo_window")
SERVICE_COMMANDS = ("serve", "up")  # long-running: they log their requests when run as a service
_json = msgspec.json.Encoder()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="branchpy-telemetry-backend",
                                     description="BranchPy telemetry ingestion backend")
    parser.add_argument("--log-level", choices=LOG_LEVELS,
                        help="default: warning at a terminal and for one-shot commands; info for "
                             "serve/up run as a service (stderr not a terminal)")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="auto",
                        help="logs on stderr: text for people, json for services (default auto: text on "
                             "a terminal, json otherwise; under systemd with journal priorities)")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--db", action="append", default=[], metavar="URL",
                       help="sqlite:///path or mysql://user:pass@host:port/db; repeat for a "
                            "CompositeSink (the first is primary). Default: $BRANCHPY_TELEMETRY_BACKEND_DB "
                            "or sqlite:///.branchpy/telemetry/events.db")
        return p

    serve = with_db(sub.add_parser("serve", help="run the API under waitress"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8787, help="0 picks a free port (printed)")
    serve.add_argument("--workers", type=int, default=4, help="worker threads")
    serve.add_argument("--catalog", metavar="FILE",
                       help="the event catalog to store by (default: the bundled BranchPy catalog); "
                            "what it does not declare is dropped and counted in each upload's answer")
    serve.add_argument("--connection-limit", type=int, dest="connection_limit", metavar="N",
                       help="open connections at most (default 1000); slow clients hold one each")
    serve.add_argument("--keepalive-timeout", type=float, dest="keepalive_timeout_s", metavar="S",
                       help="close a connection idle this long (default 75); keep it above your load "
                            "balancer's idle timeout")
    serve.add_argument("--header-timeout", type=float, dest="header_timeout_s", metavar="S",
                       help="a request's headers must arrive within this (default 10); else 408")
    serve.add_argument("--body-timeout", type=float, dest="body_timeout_s", metavar="S",
                       help="grace before a body must arrive at --body-min-rate (default 10); else 408")
    serve.add_argument("--body-min-rate", type=int, dest="body_min_rate", metavar="BYTES_PER_S",
                       help="slowest mean body rate accepted after the grace (default 16384)")
    serve.add_argument("--secondary-backlog", dest="secondary_backlog", metavar="PATH",
                       help="with several --db: where packages a secondary has yet to receive are kept "
                            "(default .branchpy/telemetry/secondary-backlog.db)")
    serve.add_argument("--trusted-proxy", dest="trusted_proxy", metavar="ADDR",
                       help="your load balancer's address: its X-Forwarded-For names the client "
                            "(per-client limits need it behind a balancer)")
    serve.add_argument("--slo-success-target", type=float, dest="slo_success_target", metavar="RATE",
                       help="share of events that must succeed (default 0.99: an error budget of 1 %%)")
    serve.add_argument("--slo-p95-target-ms", type=float, dest="slo_p95_target_ms", metavar="MS",
                       help="p95 duration target of a command with no target of its own (default 1000)")
    serve.add_argument("--slo-p95-target", action="append", dest="slo_p95_targets", metavar="NAME=MS",
                       help="a command's own p95 target, e.g. analyze=5000 (repeat per command)")
    serve.add_argument("--slo-window", dest="slo_window", metavar="DURATION",
                       help="the SLO window when a request gives no range (default 7d)")
    serve.set_defaults(handler=cmd_serve)

    up = with_db(sub.add_parser("up", help="run the local stack: backend + daemon + local keys, "
                                            "then print the dashboard URL"))
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8787, help="0 picks a free port (printed)")
    up.add_argument("--workers", type=int, default=4, help="worker threads")
    up.add_argument("--no-daemon", action="store_true", help="do not start the daemon")
    up.set_defaults(handler=cmd_up)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    create = with_db(keys.add_parser("create", help="create a key and print it once"))
    create.add_argument("--scope", required=True, choices=SCOPES)
    create.add_argument("--label")
    create.add_argument("--json", action="store_true")
    create.set_defaults(handler=cmd_keys_create)
    listing = with_db(keys.add_parser("list", help="list keys (never the keys themselves)"))
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_keys_list)
    revoke = with_db(keys.add_parser("revoke", help="revoke a key by its id"))
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=cmd_keys_revoke)

    purge = with_db(sub.add_parser("purge", help="delete events older than a duration (in batches)"))
    purge.add_argument("--older-than", required=True, metavar="DURATION", help="e.g. 90d")
    purge.add_argument("--batch-size", type=int, default=5000)
    purge.add_argument("--compact-older-than", default="1d", metavar="DURATION",
                       help="then fold the striped aggregate rows older than this into one row per key "
                            "(default 1d)")
    purge.add_argument("--json", action="store_true")
    purge.set_defaults(handler=cmd_purge)

    migrate = with_db(sub.add_parser("migrate", help="create or upgrade the database schema"))
    migrate.set_defaults(handler=cmd_migrate)
    add_install_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = args.log_level or default_level(service=args.command in SERVICE_COMMANDS)
    setup_logging(level, log_format=args.log_format)
    try:
        return args.handler(args, None if args.command == "install" else settings_from_args(args))
    except TelemetryError as exc:
        return _fail(exc.code, exc.message, exc.hint, exc.exit_code)
    except SinkError as exc:
        usage = getattr(exc, "code", "") == "bad_sink_url"
        return _fail(exc.code, str(exc), "check the --db URL and that the database is reachable",
                     EXIT_USAGE if usage else EXIT_FAILED)
    except KeyboardInterrupt:
        return EXIT_OK


def settings_from_args(args: argparse.Namespace) -> BackendSettings:
    """Environment and defaults, overridden by the flags given."""
    overrides = {name: getattr(args, name, None) for name in SETTING_FLAGS}
    if overrides.get("slo_p95_targets"):
        overrides["slo_p95_targets"] = parse_targets(overrides["slo_p95_targets"])
    return load_backend_settings(db_urls=args.db, **overrides)


def _fail(code: str, message: str, hint: str | None, exit_code: int) -> int:
    print(f"error [{code}]: {message}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)
    return exit_code


def _with_sink(settings: BackendSettings, body: Callable[[Sink], int]) -> int:
    from branchpy_telemetry.backend.app import open_configured_sink

    sink = open_configured_sink(settings)
    try:
        for note in schema_notes(sink):  # e.g. a database created on the way: say so
            print(f"note: {note}", file=sys.stderr)
        return body(sink)
    finally:
        sink.close()


def announce_schema_changes(sink: Sink) -> None:
    """What opening the sinks created or upgraded: a `note:` for a person at a terminal, a log
    event for a service (whose stderr carries only log lines)."""
    from branchpy_telemetry.client.infra.logging_setup import is_terminal

    for note in schema_notes(sink):
        if is_terminal():
            print(f"note: {note}", file=sys.stderr)
        else:
            log.info("sink.schema_changed", change=note)


def schema_notes(sink: Sink) -> list[str]:
    """What opening (and migrating) the configured sinks changed, each named by its member."""
    from branchpy_telemetry.backend.sinks.members import sink_members

    members = sink_members(sink)
    prefix = len(members) > 1
    return [f"{name}: {change}" if prefix else change
            for name, member in members.items() for change in member.schema_changes()]


def cmd_serve(args, settings: BackendSettings) -> int:
    from branchpy_telemetry.backend.app import create_app, open_configured_sink
    from branchpy_telemetry.backend.wsgi_server import ServerLimits, serve, stop_on_signals

    if args.workers < 1:
        return _fail("bad_arguments", "--workers must be >= 1", None, EXIT_USAGE)
    sink = open_configured_sink(settings)
    stop_on_signals()
    try:
        announce_schema_changes(sink)
        app = create_app(settings, sink)

        def announce(host: str, port: int) -> None:
            url = f"http://{host}:{port}"
            log.info("serve.listening", url=url, workers=args.workers, sink=sink.kind,
                     max_upload_bytes=settings.max_upload_bytes)
            print(f"serving on {url}  (API {url}/api/telemetry, dashboard {url}/dashboard)", flush=True)

        serve(app, host=args.host, port=args.port, threads=args.workers,
              max_body_bytes=settings.max_upload_bytes, limits=ServerLimits.from_settings(settings),
              on_ready=announce)
    except KeyboardInterrupt:
        pass  # SIGTERM / Ctrl-C: waitress usually swallows it and returns; either way we stop cleanly
    finally:
        sink.close()
    log.info("serve.stopped")
    return EXIT_OK


def cmd_keys_create(args, settings: BackendSettings) -> int:
    def body(sink: Sink) -> int:
        key, record = generate_key(args.scope, args.label, utcnow())
        sink.add_api_key(record)
        log.info("keys.created", key_id=record.key_id, scope=record.scope)
        if args.json:
            print(_json.encode({"key_id": record.key_id, "scope": record.scope, "label": record.label,
                                "created_at": record.created_at, "key": key}).decode())
        else:
            print(f"created key {record.key_id} (scope {record.scope}"
                  + (f", label {record.label!r})" if record.label else ")"))
            print("it is shown only this once; store it now:")
            print(key)
        return EXIT_OK

    return _with_sink(settings, body)


def cmd_keys_list(args, settings: BackendSettings) -> int:
    def body(sink: Sink) -> int:
        records = sink.list_api_keys()
        if args.json:
            rows = [{"key_id": r.key_id, "scope": r.scope, "label": r.label, "created_at": r.created_at,
                     "revoked_at": r.revoked_at} for r in records]
            print(_json.encode(rows).decode())
            return EXIT_OK
        if not records:
            print("no keys; create one with: branchpy-telemetry-backend keys create --scope ingest")
        for r in records:
            state = f"revoked {r.revoked_at}" if r.revoked_at else "active"
            print(f"{r.key_id}  {r.scope:<6}  {r.created_at}  {state}  {r.label or ''}".rstrip())
        return EXIT_OK

    return _with_sink(settings, body)


def cmd_keys_revoke(args, settings: BackendSettings) -> int:
    def body(sink: Sink) -> int:
        if not sink.revoke_api_key(args.key_id, utcnow()):
            return _fail("not_found", f"no active key with id {args.key_id!r}",
                         "see the ids with: branchpy-telemetry-backend keys list", EXIT_FAILED)
        log.info("keys.revoked", key_id=args.key_id)
        print(f"revoked key {args.key_id}")
        return EXIT_OK

    return _with_sink(settings, body)


def cmd_purge(args, settings: BackendSettings) -> int:
    from branchpy_telemetry.backend.sinks.members import sink_members

    age = parse_duration(args.older_than)
    compact_age = parse_duration(args.compact_older_than)
    if args.batch_size < 1:
        return _fail("bad_arguments", "--batch-size must be >= 1", None, EXIT_USAGE)

    def body(sink: Sink) -> int:
        now = utcnow()
        cutoff, fold_before = now - age, now - compact_age
        deleted = sink.purge_older_than(cutoff, batch_size=args.batch_size)
        compacted = sum(member.compact(fold_before, batch_size=args.batch_size)
                        for member in sink_members(sink).values())
        log.info("purge.done", deleted=deleted, cutoff=format_ts(cutoff), compacted=compacted)
        if args.json:
            print(_json.encode({"deleted": deleted, "cutoff": format_ts(cutoff), "compacted": compacted,
                                "compacted_before": format_ts(fold_before)}).decode())
        else:
            print(f"deleted {deleted} events older than {format_ts(cutoff)}")
            print(f"folded {compacted} striped aggregate rows older than {format_ts(fold_before)} "
                  "into one row per key")
        return EXIT_OK

    return _with_sink(settings, body)


def cmd_migrate(args, settings: BackendSettings) -> int:
    """Create what is missing (the database itself included) and upgrade the schema, saying which."""
    from branchpy_telemetry.backend.app import open_configured_sink

    sink = open_configured_sink(settings)  # opening migrates already; migrate() again is a no-op check
    try:
        version = sink.migrate()
        changes = schema_notes(sink)
        log.info("migrate.done", version=version, changes=changes)
        for change in changes:
            print(change)
        print(f"schema version {version}" + ("" if changes else " (already current, nothing to do)"))
        return EXIT_OK
    finally:
        sink.close()
