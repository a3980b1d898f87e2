"""`branchpy telemetry history`: upload receipts, newest first."""

from __future__ import annotations

import argparse

from branchpy_telemetry.client.contracts.errors import EXIT_OK


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("history", parents=parents, help="upload receipts (the ledger)",
                            description="When, package id, events, bytes, endpoint and the server's "
                                        "receipt of every upload (and dry run), newest first.")
    parser.add_argument("--limit", type=_count, metavar="N", help="show at most N records")
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from branchpy_telemetry.client.thin.cli.remote import call_daemon
    from branchpy_telemetry.client.thin.cli.render import format_bytes, print_json, print_table

    args = {"limit": options.limit} if options.limit else {}
    result = call_daemon(options, "history", args)
    if options.json:
        print_json(result)
        return EXIT_OK
    records = result.get("records") or []
    if not records:
        print(f"no uploads yet (ledger: {result.get('ledger_file')})")
        return EXIT_OK
    rows = [(r.get("when"), r.get("package_id") or "-", f"{r.get('events', 0):,}",
             format_bytes(r.get("bytes", 0)), "dry run" if r.get("dry_run") else r.get("outcome", "?"),
             stored_events(r), r.get("endpoint"), r.get("receipt") or "-") for r in records]
    print_table(("when (UTC)", "package", "events", "size", "outcome", "stored new / already there",
                 "endpoint", "receipt"), rows, align_right={2, 3})
    return EXIT_OK


def stored_events(record: dict) -> str:
    """What the server said it stored of the package's events (new, and already stored before)."""
    if record.get("dry_run"):
        return "-"
    accepted, duplicate = record.get("accepted_events"), record.get("duplicate_events")
    if record.get("outcome") == "duplicate" and accepted is None:
        return f"0 / {record.get('events', 0):,}"  # the whole package was stored before
    if accepted is None:
        return "?"
    return f"{accepted:,} / {duplicate or 0:,}"


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
    return value
