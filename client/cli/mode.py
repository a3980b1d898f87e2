"""`branchpy telemetry mode manual|auto [--interval 6h] [--dry-run]`."""

from __future__ import annotations

import argparse

from ..errors import EXIT_OK


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "mode", parents=parents, help="switch between manual and auto delivery",
        description="manual: nothing is sent unless you run upload/sync. auto: the daemon delivers on "
                    "a schedule (--interval, floor 10s, jittered; --dry-run builds, validates and records "
                    "but never sends). Persisted in the config file; takes effect at once.")
    parser.add_argument("mode", choices=["manual", "auto"])
    parser.add_argument("--interval", metavar="DURATION", help="auto mode: time between runs (e.g. 6h)")
    parser.add_argument("--dry-run", action="store_true", default=None,
                        help="auto mode: never send, record what would have been sent")
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from ..timewindow import parse_duration
    from .remote import call_daemon

    if options.interval is not None:
        parse_duration(options.interval)  # usage error (exit 2) before any daemon work
    args: dict = {"mode": options.mode}
    if options.interval is not None:
        args["interval"] = options.interval
    if options.dry_run:
        args["dry_run"] = True
    result = call_daemon(options, "mode", args)
    from .render import print_json, print_pairs

    if options.json:
        print_json(result)
    else:
        pairs = [("mode", result["mode"])]
        if result["mode"] == "auto":
            pairs += [("interval", result["interval"]), ("dry run", result["dry_run"]),
                      ("next run", result.get("next_run"))]
        print_pairs(pairs + [("config", result["config_file"])])
    return EXIT_OK
