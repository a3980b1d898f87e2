"""`branchpy telemetry status`: is the daemon up, and what is waiting locally."""

from __future__ import annotations

import argparse

from branchpy_telemetry.client.contracts.errors import EXIT_OK


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("status", parents=parents, help="daemon and spool status",
                            description="Show the daemon's state (starting it unless --no-start).")
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from branchpy_telemetry.client.thin.cli.remote import call_daemon

    result = call_daemon(options, "status")
    print_status(options, result)
    return EXIT_OK


def print_status(options: argparse.Namespace, result: dict) -> None:
    from branchpy_telemetry.client.thin.cli.render import (
        format_bytes,
        format_duration,
        print_json,
        print_pairs,
    )

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
        *delivery_pairs(result),
    ])


def delivery_pairs(result: dict) -> list[tuple[str, object]]:
    """Auto mode, outbox and counters since install, when the daemon reports them."""
    from branchpy_telemetry.client.thin.cli.render import format_bytes

    pairs: list[tuple[str, object]] = []
    auto = result.get("auto")
    if auto:
        if auto.get("scheduled"):
            pairs.append(("auto", f"every {auto['interval']}" + (" (dry run)" if auto.get("dry_run") else "")
                          + f", next run {auto.get('next_run')}"))
        elif result.get("mode") == "auto":
            pairs.append(("auto", f"NOT SCHEDULED: {auto.get('not_scheduled_because')}"))
        last = auto.get("last_run")
        if last:
            outcome = "ok" if last.get("ok") else f"failed: {last.get('error')}"
            report = last.get("report") or {}
            if last.get("ok") and report.get("failure"):
                outcome = f"ran, {report.get('kept', 0)} package(s) not delivered: {report['failure'][:120]}"
            pairs.append(("last run", f"{last.get('started_at')} ({last.get('trigger')}) {outcome}"))
    consent = result.get("consent")
    if consent:
        pairs.append(("deliveries", "allowed" if consent["deliveries"] == "allowed"
                      else f"blocked by {consent['blocked_by']}"))
    outbox = result.get("outbox")
    if outbox:
        pairs.append(("outbox", f"{outbox['packages']} package(s), {format_bytes(outbox['bytes'])}"
                                f", {outbox['quarantined']} quarantined"
                                + (f" ({outbox['quarantined_events']} events)" if outbox.get("quarantined")
                                   else "")))
    counters = result.get("counters")
    if counters:
        pairs += counter_pairs(counters)
    return pairs


def counter_pairs(counters: dict) -> list[tuple[str, object]]:
    """Counters since install, each line saying what it counts."""
    dropped = ", ".join(f"{k} {v}" for k, v in sorted((counters.get("dropped") or {}).items())) or "none"
    return [
        ("since install", ""),
        ("  read by sync", f"{counters['read_by_sync']:,} event(s) read from the spool by sync/auto mode"),
        ("  exported", f"{counters['exported']:,} event(s) in {counters['exported_packages']:,} package(s), "
                       "counted at each export (a window exported twice counts twice)"),
        ("  dry runs", f"{counters['dry_run_exported']:,} event(s) in {counters['dry_run_packages']:,} "
                       "package(s) built by upload --dry-run, never sent"),
        ("  uploaded", f"{counters['uploaded']:,} event(s) new to the server in "
                       f"{counters['uploaded_packages']:,} package(s); {counters['duplicate_events']:,} "
                       f"event(s) it already had ({counters['duplicates']:,} package(s) sent again whole)"),
        ("  dropped", dropped),
    ]
