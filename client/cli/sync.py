"""`branchpy telemetry sync`: run the auto-mode job now (rotate, export what is new, send)."""

from __future__ import annotations

import argparse

from ..errors import EXIT_OK


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "sync", parents=parents, help="deliver everything not yet delivered, now",
        description="Run the auto-mode job now, in either mode: rotate the spool if due, package every "
                    "event not yet delivered, send the outbox. Exit 5 if something could not be sent "
                    "(it stays in the outbox).")
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from .remote import call_daemon_long

    result = call_daemon_long(options, "sync", {}, "syncing")
    print_report(options, result)
    return EXIT_OK


def print_report(options: argparse.Namespace, report: dict) -> None:
    from .render import print_json, print_pairs

    if options.json:
        print_json(report)
        return
    sent = "recorded (dry run)" if report.get("dry_run") else "delivered"
    count = report.get("dry_run_recorded") if report.get("dry_run") else report.get("delivered")
    print_pairs([
        ("read", f"{report.get('read_events', 0):,} new event(s)"),
        ("exported", f"{report.get('exported_events', 0):,} event(s) in "
                     f"{report.get('exported_packages', 0)} package(s)"),
        (sent, f"{count or 0} package(s)"
               + (f", {report.get('events_delivered', 0):,} event(s)" if not report.get("dry_run") else "")),
        ("duplicates", report.get("duplicates", 0)),
        ("over budget", report.get("over_budget", 0)),
        ("outbox", f"{report.get('outbox_packages', 0)} package(s) waiting"),
    ])
