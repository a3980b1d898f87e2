"""`branchpy telemetry sync`: run the auto-mode job now (rotate, export what is new, send)."""

from __future__ import annotations

import argparse

from branchpy_telemetry.client.contracts.errors import EXIT_OK


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "sync", parents=parents, help="deliver everything not yet delivered, now",
        description="Run the auto-mode job now, in either mode: rotate the spool if due, package every "
                    "event not yet delivered, send the outbox. Exit 5 if something could not be sent "
                    "(it stays in the outbox).")
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from branchpy_telemetry.client.thin.cli.remote import call_daemon_long

    result = call_daemon_long(options, "sync", {}, "syncing")
    print_report(options, result)
    return EXIT_OK


def print_report(options: argparse.Namespace, report: dict) -> None:
    from branchpy_telemetry.client.thin.cli.render import print_json, print_pairs

    if options.json:
        print_json(report)
        return
    if report.get("dry_run"):
        sent = ("recorded (dry run)", f"{report.get('dry_run_recorded') or 0} package(s), nothing sent")
    else:
        sent = ("delivered", f"{report.get('delivered', 0)} package(s): "
                             f"{report.get('events_delivered', 0):,} event(s) new to the server, "
                             f"{report.get('events_known', 0):,} it already had")
    print_pairs([
        ("read", f"{report.get('read_events', 0):,} event(s) added to the spool since the last sync "
                 "(some may have been sent by upload already)"),
        ("exported", f"{report.get('exported_events', 0):,} event(s) in "
                     f"{report.get('exported_packages', 0)} package(s)"),
        sent,
        ("resent", f"{report.get('duplicates', 0)} package(s) the server had stored whole"),
        ("over budget", f"{report.get('over_budget', 0)} package(s) wait for the next UTC day's budget"),
        ("outbox", f"{report.get('outbox_packages', 0)} package(s) waiting"),
    ])
