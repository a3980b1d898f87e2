"""`branchpy telemetry history`: upload receipts, newest first."""

from __future__ import annotations

import argparse

from ..errors import EXIT_OK


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("history", parents=parents, help="upload receipts (the ledger)",
                            description="When, package id, events, bytes, endpoint and the server's "
                                        "receipt of every upload (and dry run), newest first.")
    parser.add_argument("--limit", type=_count, metavar="N", help="show at most N records")
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from .remote import call_daemon
    from .render import format_bytes, print_json

    args = {"limit": options.limit} if options.limit else {}
    result = call_daemon(options, "history", args)
    if options.json:
        print_json(result)
        return EXIT_OK
    records = result.get("records") or []
    if not records:
        print(f"no uploads yet (ledger: {result.get('ledger_file')})")
        return EXIT_OK
    for r in records:
        tag = "dry run" if r.get("dry_run") else r.get("outcome", "?")
        print(f"{r.get('when')}  {r.get('package_id')}  {r.get('events', 0):>6,} events  "
              f"{format_bytes(r.get('bytes', 0)):>9}  {tag:<9}  {r.get('endpoint')}  "
              f"{r.get('receipt') or '-'}")
    return EXIT_OK


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
    return value
