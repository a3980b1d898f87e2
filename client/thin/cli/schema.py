"""`branchpy telemetry schema [--bridge | --event]`: a published JSON Schema (always JSON).

Without a flag: the package schema v1.0.0. `--bridge`: every message of the
VS Code bridge protocol. `--event`: one line of the JSONL event files.
"""

from __future__ import annotations

import argparse

from branchpy_telemetry.client.contracts.errors import EXIT_OK


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("schema", parents=parents, help="print a JSON Schema (package, bridge, event)",
                            description="Print the JSON Schema every exported package follows, or with "
                                        "--bridge the VS Code bridge protocol's messages, or with --event "
                                        "one line of the JSONL event files.")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--bridge", dest="document", action="store_const", const="bridge",
                       help="the bridge protocol: every request, result, progress and error message")
    which.add_argument("--event", dest="document", action="store_const", const="event",
                       help="the event record: one line of the spool or the extension's JSONL files")
    parser.set_defaults(run=run, document="package")


def run(options: argparse.Namespace) -> int:
    from branchpy_telemetry.client.thin.cli.remote import call_daemon
    from branchpy_telemetry.client.thin.cli.render import print_json

    args = {} if options.document == "package" else {"document": options.document}
    print_json(call_daemon(options, "schema", args))
    return EXIT_OK
