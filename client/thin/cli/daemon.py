"""`branchpy telemetry daemon start | stop | status | install [--print]`."""

from __future__ import annotations

import argparse

from branchpy_telemetry.client.contracts.errors import EXIT_DAEMON_UNAVAILABLE, EXIT_OK
from branchpy_telemetry.client.thin.cli import daemon_install

STOP_TIMEOUT = 10.0


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("daemon", parents=parents, help="start, stop or check the daemon",
                            description="Manage the per-user telemetry daemon.")
    actions = parser.add_subparsers(dest="daemon_action", metavar="ACTION", required=True)
    actions.add_parser("start", parents=parents, help="start the daemon unless one runs").set_defaults(
        run=run_start)
    actions.add_parser("stop", parents=parents, help="ask the daemon to stop and wait").set_defaults(
        run=run_stop)
    actions.add_parser("status", parents=parents,
                       help="is a daemon running? (never starts one; exit 3 if not)").set_defaults(
        run=run_status)
    daemon_install.register(actions, parents)


def run_start(options: argparse.Namespace) -> int:
    from branchpy_telemetry.client.contracts.paths import resolve_paths
    from branchpy_telemetry.client.thin.cli.remote import call_daemon
    from branchpy_telemetry.client.thin.cli.render import print_json
    from branchpy_telemetry.client.thin.daemon_launcher import require_daemon

    started = require_daemon(resolve_paths(), start=True)
    result = call_daemon(options, "status")
    if options.json:
        print_json({"started": started, **result})
    else:
        verb = "started" if started else "already running"
        print(f"daemon {verb} (pid {result['pid']}, socket {result['socket']})")
    return EXIT_OK


def run_stop(options: argparse.Namespace) -> int:
    from branchpy_telemetry.client.contracts.errors import DaemonUnavailableError
    from branchpy_telemetry.client.contracts.paths import resolve_paths
    from branchpy_telemetry.client.thin.cli.remote import call_daemon
    from branchpy_telemetry.client.thin.cli.render import print_json
    from branchpy_telemetry.client.thin.daemon_launcher import is_listening, wait_until_stopped

    paths = resolve_paths()
    if not is_listening(paths):
        if options.json:
            print_json({"stopped": False, "running": False})
        else:
            print("no daemon is running")
        return EXIT_OK
    options.no_start = True
    result = call_daemon(options, "shutdown")
    if not wait_until_stopped(paths, result.get("pid"), options.timeout or STOP_TIMEOUT):
        raise DaemonUnavailableError(f"the daemon (pid {result.get('pid')}) did not stop in time",
                                     hint=f"see its log: {paths.daemon_log}")
    if options.json:
        print_json({"stopped": True, "pid": result.get("pid")})
    else:
        print(f"daemon stopped (pid {result.get('pid')})")
    return EXIT_OK


def run_status(options: argparse.Namespace) -> int:
    from branchpy_telemetry.client.contracts.paths import resolve_paths
    from branchpy_telemetry.client.contracts.transport import describe
    from branchpy_telemetry.client.thin.cli.remote import call_daemon
    from branchpy_telemetry.client.thin.cli.render import print_json
    from branchpy_telemetry.client.thin.cli.status import print_status
    from branchpy_telemetry.client.thin.daemon_launcher import is_listening

    paths = resolve_paths()
    if not is_listening(paths):
        if options.json:
            print_json({"running": False, "socket": describe(paths), "log_file": str(paths.daemon_log)})
        else:
            print(f"daemon: not running (socket {describe(paths)}; log {paths.daemon_log})")
        return EXIT_DAEMON_UNAVAILABLE
    options.no_start = True
    result = call_daemon(options, "status")
    print_status(options, {"running": True, **result} if options.json else result)
    return EXIT_OK
