"""`branchpy telemetry upload --file FILE | --auto --from WINDOW [--dry-run]`.

Exit 5 when the package could not be delivered (it is kept; the error names
where), 4 when the backend rejected it (quarantined), or the file is not what
this machine exported and was not confirmed with --reviewed after `preview`.
"""

from __future__ import annotations

import argparse
import os

from branchpy_telemetry.client.contracts.errors import EXIT_OK


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "upload", parents=parents, help="send a reviewed package, or a fresh one for a window",
        description="Send a package file exactly as this machine exported it; a file it did not export "
                    "(an edited copy) or one changed since is refused (exit 4) unless you `preview` it and "
                    "pass --reviewed. With --auto, build a fresh package for --from WINDOW and send it. "
                    "On failure the package is kept and its path printed (exit 5).")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--file", "-f", metavar="FILE", help="the package file to send")
    what.add_argument("--auto", action="store_true", help="build a fresh package for --from and send it")
    parser.add_argument("--from", dest="from_", metavar="WINDOW",
                        help="with --auto: start of the window (30m, 24h, 7d or an ISO-8601 time)")
    parser.add_argument("--reviewed", action="store_true",
                        help="with --file: send a file this machine did not export (or one changed "
                             "since) as `preview` showed it; refused unless preview found exactly this "
                             "content VALID")
    parser.add_argument("--dry-run", action="store_true",
                        help="build and validate, record in the ledger, never send")
    parser.set_defaults(run=run, parser=parser)


def run(options: argparse.Namespace) -> int:
    from branchpy_telemetry.client.contracts.consent import withdrawal_source
    from branchpy_telemetry.client.contracts.errors import ConsentWithdrawnError
    from branchpy_telemetry.client.contracts.timewindow import parse_window_start, utcnow
    from branchpy_telemetry.client.thin.cli.remote import call_daemon_long

    if options.auto and not options.from_:
        options.parser.error("--auto needs --from WINDOW (e.g. --from 24h)")
    if options.file and options.from_:
        options.parser.error("--from goes with --auto, not with --file")
    if options.auto and options.reviewed:
        options.parser.error("--reviewed goes with --file, not with --auto")
    if options.from_:
        parse_window_start(options.from_, utcnow())  # a typo is a usage error before any daemon work
    source = withdrawal_source()
    if source is not None and not options.dry_run:
        raise ConsentWithdrawnError(
            f"telemetry consent is withdrawn by {source} in your environment: nothing was sent",
            hint="unset DO_NOT_TRACK / BRANCHPY_TELEMETRY to upload, or use --dry-run")
    args: dict = {"dry_run": options.dry_run}
    if options.auto:
        args.update({"auto": True, "from": options.from_})
    else:
        args["file"] = os.path.abspath(options.file)
        if options.reviewed:
            args["reviewed"] = True
    result = call_daemon_long(options, "upload", args, "uploading")
    print_result(options, result)
    return EXIT_OK


def print_result(options: argparse.Namespace, result: dict) -> None:
    from branchpy_telemetry.client.thin.cli.render import format_bytes, print_json

    if options.json:
        print_json(result)
        return
    if not result.get("results"):
        print("nothing to upload: no events in the window")
        return
    verb = "would send (dry run)" if result.get("dry_run") else "sent"
    for item in result["results"]:
        receipt = f", receipt {item['receipt']}" if item.get("receipt") else ""
        print(f"{verb} {item.get('name')}: package {item.get('package_id')}, {item.get('events', 0):,} "
              f"event(s), {format_bytes(item.get('bytes', 0))} — {outcome_words(item)}{receipt}")


def outcome_words(item: dict) -> str:
    """What the server did with the package's events: stored as new, or already had them."""
    outcome = item.get("outcome")
    new, known = item.get("new_events"), item.get("known_events")
    if outcome == "duplicate":
        return f"already delivered (the server had this package: {known or 0:,} event(s), none new)"
    if outcome == "delivered" and new is not None:
        if not known:
            return f"delivered ({new:,} new)"
        return f"delivered ({new:,} new, {known:,} the server already had)"
    return str(outcome)
