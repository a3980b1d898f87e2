"""`branchpy telemetry status`: is the daemon up, and what is waiting locally."""

from __future__ import annotations

import argparse

from ..errors import EXIT_OK


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("status", parents=parents, help="daemon and spool status",
                            description="Show the daemon's state (starting it unless --no-start).")
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from .remote import call_daemon

    result = call_daemon(options, "status")
    print_status(options, result)
    return EXIT_OK


def print_status(options: argparse.Namespace, result: dict) -> None:
    from .render import format_bytes, format_duration, print_json, print_pairs

    if options.json:
        print_json(result)
        return
    print_pairs([
        ("daemon", f"running (pid {result['pid']}, version {result['version']}, "
                   f"up {format_duration(result['uptime_s'])})"),
        ("mode", result["mode"] + (f" (exits after {result['idle_timeout_s']:g}s idle)"
                                   if result.get("idle_timeout_s") else "")),
        ("endpoint", result["endpoint"]),
        ("socket", result["socket"]),
        ("spool", f"{result['spool_files']} file(s), {format_bytes(result['spool_bytes'])} "
                  f"in {result['spool_dir']}"),
        ("config", result["config_file"]),
        ("log", result["log_file"]),
    ])
