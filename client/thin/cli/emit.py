"""`branchpy telemetry emit`: record one event from a script or another language.

Writes straight to the spool through the emitter (no daemon involved), so it
works when no daemon runs and never waits on one.
"""

from __future__ import annotations

import argparse

from branchpy_telemetry.client.contracts.errors import EXIT_OK, StorageError, UsageError

CATEGORIES = ("command", "feature", "error", "performance", "session", "system")
# The statuses an event may carry (client.contracts.fixed_formats.STATUSES; a test keeps the two
# equal). Spelled out here so that building the parser does not import msgspec for every command.
STATUS_WORDS = ("ok", "error", "cancelled", "timeout", "skipped")


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "emit", parents=parents, help="record one event (writes the spool directly; no daemon needed)",
        description="Record one telemetry event in the local spool. This writes the spool file "
                    "directly: no daemon is needed or started. Nothing leaves the machine until you "
                    "export and upload. Does nothing under DO_NOT_TRACK=1 or BRANCHPY_TELEMETRY=off.")
    parser.add_argument("--category", required=True, choices=CATEGORIES)
    parser.add_argument("--name", required=True, help="command or feature name, e.g. analyze")
    parser.add_argument("--duration-ms", type=float, metavar="MS", help="how long it took, 0 to 1e12 ms")
    parser.add_argument("--status", type=event_status, metavar="STATUS",
                        help=f"{', '.join(STATUS_WORDS)} (default: error when an --error-* option is "
                             "given, else ok for commands)")
    parser.add_argument("--error-code", metavar="CODE", help="stable error code, e.g. BP-E1042")
    parser.add_argument("--error-type", metavar="TYPE", help="exception type, e.g. ValueError")
    parser.add_argument("--error-message", metavar="TEXT",
                        help="raw message (stays local; packages carry only its normalized hash)")
    parser.add_argument("--session-id", metavar="ID",
                        help="group events of one run (default: $BRANCHPY_SESSION_ID or a new id)")
    parser.add_argument("--correlation-id", metavar="ID", help="tie this event to others of one operation")
    parser.add_argument("--attr", action="append", default=[], metavar="KEY=VALUE",
                        help="extra attribute (repeatable); numbers and true/false are typed")
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from branchpy_telemetry.client.contracts.consent import consent_withdrawn
    from branchpy_telemetry.client.contracts.paths import resolve_paths
    from branchpy_telemetry.client.emitter import emit as emitter
    from branchpy_telemetry.client.thin.cli.render import print_json

    attrs = dict(parse_attr(item) for item in options.attr)
    error = {k: v for k, v in (("code", options.error_code), ("type", options.error_type),
                               ("message", options.error_message)) if v is not None}
    status = options.status or default_status(options.category, bool(error))
    fields = {
        "duration_ms": options.duration_ms, "status": status,
        "session_id": options.session_id, "correlation_id": options.correlation_id,
        "error": error or None, "attrs": attrs or None,
    }
    event = emitter.build_event(options.category, options.name,
                                **{k: v for k, v in fields.items() if v is not None})
    recorded = emitter.write_event(event)
    spool = resolve_paths().active_spool
    if not recorded and not consent_withdrawn():
        raise StorageError(f"not recorded: cannot write to the spool {spool}: "
                           f"{emitter.last_write_error() or 'unknown error'}",
                           hint="nothing was written; free disk space or fix the folder's permissions")
    result = {"recorded": recorded, "event_id": event.event_id if recorded else None, "spool": str(spool)}
    if options.json:
        print_json(result)
    elif recorded:
        print(f"recorded {options.category}/{options.name} ({event.event_id}) in {spool}")
    else:
        print("not recorded: telemetry is off (DO_NOT_TRACK / BRANCHPY_TELEMETRY=off)")
    return EXIT_OK


def event_status(text: str) -> str:
    """--status: one of the statuses a package may carry (anything else would be dropped at export)."""
    from branchpy_telemetry.client.contracts.fixed_formats import STATUSES

    if text not in STATUSES:
        raise argparse.ArgumentTypeError(f"invalid status {text!r}: choose one of {', '.join(STATUSES)}")
    return text


def default_status(category: str, has_error: bool) -> str | None:
    """What a script means when it gives no --status: an error if it described one,
    else a finished command succeeded (SLOs count commands by status)."""
    if has_error:
        return "error"
    return "ok" if category == "command" else None


def parse_attr(text: str) -> tuple[str, object]:
    import json

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"--attr expects KEY=VALUE, got {text!r}", hint="e.g. --attr files_scanned=120")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if isinstance(value, (dict, list)):
        value = raw
    return key.strip(), value
