"""`branchpy telemetry preview FILE`: exactly what would be sent, and what was removed."""

from __future__ import annotations

import argparse
import os
import sys

from branchpy_telemetry.client.contracts.errors import EXIT_OK, EXIT_REJECTED


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "preview", parents=parents, help="review a package before it is sent",
        description="Show a package's content and its redaction report (counts per rule and JSON "
                    "pointers, never the removed values). Exit 4 if the package breaks a rule.")
    parser.add_argument("file", metavar="FILE", help="a package written by `export`")
    parser.add_argument("--all", action="store_true", help="list every event (default: the first 50)")
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from branchpy_telemetry.client.thin.cli.remote import call_daemon

    args = {"file": os.path.abspath(options.file), "max_events": 0 if options.all else 50}
    result = call_daemon(options, "preview", args)
    if options.json:
        from branchpy_telemetry.client.thin.cli.render import print_json

        print_json(result)
    else:
        # the review layout, rendered by the daemon (daemon/export/preview.py)
        sys.stdout.write(result["text"])
    return EXIT_OK if result.get("valid", True) else EXIT_REJECTED

