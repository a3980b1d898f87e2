"""`branchpy telemetry schema`: the package JSON Schema v1.0.0 (always JSON)."""

from __future__ import annotations

import argparse

from ..errors import EXIT_OK


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("schema", parents=parents, help="print the package JSON Schema",
                            description="Print the JSON Schema every exported package follows.")
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from .remote import call_daemon
    from .render import print_json

    print_json(call_daemon(options, "schema"))
    return EXIT_OK
