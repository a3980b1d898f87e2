"""`branchpy telemetry export --output FILE [--from WINDOW] [--to TIME]`."""

from __future__ import annotations

import argparse
import os

from branchpy_telemetry.client.contracts.errors import EXIT_OK


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "export", parents=parents, help="write a sanitized package for review",
        description="Build a sanitized telemetry package from the local spool (nothing is sent). "
                    "Windows larger than telemetry.max_upload_size_mb are split into FILE.part001.json, …")
    parser.add_argument("--output", "-o", required=True, metavar="FILE", help="package file to write")
    parser.add_argument("--from", dest="from_", metavar="WINDOW",
                        help="start of the window: 30m, 24h, 7d or an ISO-8601 time (default: everything)")
    parser.add_argument("--to", metavar="TIME", help="end of the window (default: now)")
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from branchpy_telemetry.client.contracts.timewindow import parse_window_start, utcnow
    from branchpy_telemetry.client.thin.cli.remote import call_daemon_long

    now = utcnow()
    for value in (options.from_, options.to):
        if value:
            parse_window_start(value, now)  # a typo is a usage error (exit 2) before any daemon work
    args = {"output": os.path.abspath(options.output)}
    if options.from_:
        args["from"] = options.from_
    if options.to:
        args["to"] = options.to
    result = call_daemon_long(options, "export", args, "exporting")
    print_result(options, result)
    return EXIT_OK


def print_result(options: argparse.Namespace, result: dict) -> None:
    from branchpy_telemetry.client.thin.cli.render import format_bytes, print_json

    if options.json:
        print_json(result)
        return
    files = result.get("files", [])
    print(f"exported {result.get('events', 0):,} event(s) to {len(files)} file(s) "
          f"({format_bytes(result.get('bytes', 0))}):")
    for name in files:
        print(f"  {name}")
    redactions = {rule: n for rule, n in (result.get("redactions") or {}).items() if n}
    if redactions:
        counts = ", ".join(f"{rule} {n}" for rule, n in sorted(redactions.items()))
        print(f"removed before export: {counts}")
    left_out = result.get("left_out") or {}
    if left_out:
        names = ", ".join(f"{name} ×{n}" for name, n in sorted(left_out.items()))
        print(f"not in the catalog, left out: {names}  (see `branchpy telemetry catalog`)")
    if result.get("report_file"):
        print(f"redaction report: {result['report_file']}")
    if result.get("skipped_lines"):
        print(f"skipped {result['skipped_lines']} undecodable line(s)")
    if files:
        print(f"review it: branchpy telemetry preview {files[0]}")
