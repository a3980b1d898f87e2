"""`branchpy telemetry rotate`: rotate the active spool file now."""

from __future__ import annotations

import argparse

from branchpy_telemetry.client.contracts.errors import EXIT_OK


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("rotate", parents=parents, help="rotate the active spool file now",
                            description="Close the active spool file (writers move to a new one).")
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from branchpy_telemetry.client.thin.cli.remote import call_daemon
    from branchpy_telemetry.client.thin.cli.render import print_json

    result = call_daemon(options, "rotate", {})
    if options.json:
        print_json(result)
    else:
        print(f"rotated to {result['file']}" if result.get("rotated") else "nothing to rotate (spool empty)")
    return EXIT_OK
