"""`branchpy telemetry purge [--yes] [--reset-id]`: forget local telemetry data.

Asks for confirmation on a terminal (answering no deletes nothing and exits 0);
scripts pass --yes (without it and without a terminal: exit 2 with a hint, nothing deleted).
"""

from __future__ import annotations

import argparse
import sys

from branchpy_telemetry.client.contracts.errors import EXIT_OK, UsageError


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "purge", parents=parents, help="delete the local spool, outbox and ledger",
        description="Delete the local spool, the outbox (packages not yet sent) and the upload ledger. "
                    "Nothing on the server is touched.")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--reset-id", action="store_true", help="also give this install a new governance id")
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from branchpy_telemetry.client.thin.cli.remote import call_daemon
    from branchpy_telemetry.client.thin.cli.render import print_json

    if not options.yes:
        if not sys.stdin.isatty():
            raise UsageError("purge needs confirmation and there is no terminal to ask",
                             hint="run `branchpy telemetry purge --yes` to confirm from a script")
        what = "spool, outbox and ledger" + (" and reset the governance id" if options.reset_id else "")
        sys.stderr.write(f"Delete the local telemetry {what}? [y/N] ")
        sys.stderr.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            print("nothing deleted")  # your answer, not a failure
            return EXIT_OK
    result = call_daemon(options, "purge", {"yes": True, "reset_id": options.reset_id})
    if options.json:
        print_json(result)
        return EXIT_OK
    removed = result.get("removed", {})
    print(f"deleted {removed.get('spool_files', 0)} spool file(s), {removed.get('outbox_files', 0)} outbox "
          f"file(s), {removed.get('quarantine_files', 0)} quarantined file(s)"
          + (", the ledger" if removed.get("ledger") else ""))
    if result.get("governance_id_reset"):
        print("new governance id")
    return EXIT_OK
