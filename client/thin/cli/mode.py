"""`branchpy telemetry mode [manual|auto [--interval 6h] [--dry-run]]` (no mode: show the one in force)."""

from __future__ import annotations

import argparse

from branchpy_telemetry.client.contracts.errors import EXIT_OK, UsageError


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "mode", parents=parents, help="switch between manual and auto delivery",
        description="manual: nothing is sent unless you run upload/sync. auto: the daemon delivers on "
                    "a schedule (--interval, floor 10s, jittered; --dry-run builds, validates and records "
                    "but never sends). Persisted in the config file; takes effect at once.")
    parser.add_argument("mode", choices=["manual", "auto"], nargs="?",
                        help="the mode to switch to (without it: show the mode in force)")
    parser.add_argument("--interval", metavar="DURATION", help="auto mode: time between runs (e.g. 6h)")
    parser.add_argument("--dry-run", action="store_true", default=None,
                        help="auto mode: never send, record what would have been sent")
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from branchpy_telemetry.client.thin.cli.remote import call_daemon

    if options.mode is None:
        if options.interval is not None or options.dry_run:
            raise UsageError("--interval and --dry-run go with a mode", hint="e.g. mode auto --interval 6h")
        return show_mode(options, call_daemon(options, "status"))
    if options.interval is not None:
        from branchpy_telemetry.client.contracts.timewindow import parse_duration

        parse_duration(options.interval)  # usage error (exit 2) before any daemon work
    args: dict = {"mode": options.mode}
    if options.interval is not None:
        args["interval"] = options.interval
    if options.dry_run:
        args["dry_run"] = True
    result = call_daemon(options, "mode", args)
    from branchpy_telemetry.client.thin.cli.render import print_json, print_pairs

    if options.json:
        print_json(result)
    else:
        pairs = [("mode", result["mode"])]
        if result["mode"] == "auto":
            pairs += [("interval", result["interval"]), ("dry run", result["dry_run"]),
                      ("next run", result.get("next_run"))]
        print_pairs(pairs + [("config", result["config_file"])])
    return EXIT_OK


def show_mode(options: argparse.Namespace, status: dict) -> int:
    """`mode` alone: the mode in force, and in auto mode its schedule (or why there is none)."""
    from branchpy_telemetry.client.thin.cli.render import print_json, print_pairs

    auto = status.get("auto") or {}
    if options.json:
        print_json({"mode": status["mode"], "interval": auto.get("interval"), "dry_run": auto.get("dry_run"),
                    "scheduled": auto.get("scheduled"), "next_run": auto.get("next_run"),
                    "not_scheduled_because": auto.get("not_scheduled_because"),
                    "config_file": status["config_file"]})
        return EXIT_OK
    pairs = [("mode", status["mode"])]
    if status["mode"] == "auto":
        pairs += [("interval", auto.get("interval")), ("dry run", auto.get("dry_run"))]
        if auto.get("scheduled"):
            pairs.append(("next run", auto.get("next_run")))
        else:
            pairs.append(("next run", f"none: {auto.get('not_scheduled_because')}"))
    print_pairs(pairs + [("config", status["config_file"])])
    return EXIT_OK
