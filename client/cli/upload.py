"""`branchpy telemetry upload --file FILE | --auto --from WINDOW [--dry-run]`.

Exit 5 when the package could not be delivered (it is kept; the error names
where), 4 when the backend rejected it (quarantined) or it changed since review.
"""

from __future__ import annotations

import argparse
import os

from ..errors import EXIT_OK


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "upload", parents=parents, help="send a reviewed package, or a fresh one for a window",
        description="Send exactly the package file you reviewed (refused if it changed since "
                    "export/preview), or with --auto build a fresh package for --from WINDOW and send it. "
                    "On failure the package is kept and its path printed (exit 5).")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--file", "-f", metavar="FILE", help="the package file to send")
    what.add_argument("--auto", action="store_true", help="build a fresh package for --from and send it")
    parser.add_argument("--from", dest="from_", metavar="WINDOW",
                        help="with --auto: start of the window (30m, 24h, 7d or an ISO-8601 time)")
    parser.add_argument("--dry-run", action="store_true",
                        help="build and validate, record in the ledger, never send")
    parser.set_defaults(run=run, parser=parser)


def run(options: argparse.Namespace) -> int:
    from ..consent import withdrawal_source
    from ..errors import ConsentWithdrawnError
    from ..timewindow import parse_window_start, utcnow
    from .remote import call_daemon_long

    if options.auto and not options.from_:
        options.parser.error("--auto needs --from WINDOW (e.g. --from 24h)")
    if options.file and options.from_:
        options.parser.error("--from goes with --auto, not with --file")
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
    result = call_daemon_long(options, "upload", args, "uploading")
    print_result(options, result)
    return EXIT_OK


def print_result(options: argparse.Namespace, result: dict) -> None:
    from .render import format_bytes, print_json

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
              f"event(s), {format_bytes(item.get('bytes', 0))} — {item.get('outcome')}{receipt}")
