"""`branchpy telemetry config show | get KEY | set KEY VALUE` (keys: docs/cli.md)."""

from __future__ import annotations

import argparse
import os

from branchpy_telemetry.client.contracts.errors import EXIT_OK


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("config", parents=parents, help="show, get or set configuration",
                            description="Read or change telemetry settings (persisted in the config file).")
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    show = actions.add_parser("show", parents=parents, help="every key with its effective value")
    show.set_defaults(run=run_show)
    get = actions.add_parser("get", parents=parents, help="one key's effective value")
    get.add_argument("key", metavar="KEY", help="dotted key, e.g. telemetry.mode")
    get.set_defaults(run=run_get)
    put = actions.add_parser("set", parents=parents, help="validate and persist one key",
                             description="Validate VALUE as loading the file would (type, range, duration, "
                                         "the 10s interval floor, a valid catalog file) and save it; a value "
                                         "that fails changes nothing. A relative path is taken from here.")
    put.add_argument("key", metavar="KEY", help="dotted key, e.g. telemetry.auto.interval")
    put.add_argument("value", metavar="VALUE", help="new value, e.g. 6h (empty string unsets optional keys)")
    put.set_defaults(run=run_set)


def run_show(options: argparse.Namespace) -> int:
    from branchpy_telemetry.client.thin.cli.remote import call_daemon
    from branchpy_telemetry.client.thin.cli.render import print_json, print_pairs

    result = call_daemon(options, "config.get")
    if options.json:
        print_json(result)
    else:
        print_pairs(result["values"].items())
        print(f"# file: {result['config_file']}")
    return EXIT_OK


def run_get(options: argparse.Namespace) -> int:
    from branchpy_telemetry.client.thin.cli.remote import call_daemon
    from branchpy_telemetry.client.thin.cli.render import format_value, print_json

    result = call_daemon(options, "config.get", {"key": options.key})
    print_json(result) if options.json else print(format_value(result["value"]))
    return EXIT_OK


def run_set(options: argparse.Namespace) -> int:
    from branchpy_telemetry.client.contracts.config import PATH_KEYS
    from branchpy_telemetry.client.thin.cli.remote import call_daemon
    from branchpy_telemetry.client.thin.cli.render import format_value, print_json

    value = options.value
    if options.key in PATH_KEYS and value.strip():  # the daemon runs elsewhere: send an absolute path
        value = os.path.abspath(os.path.expanduser(value))
    result = call_daemon(options, "config.set", {"key": options.key, "value": value})
    if options.json:
        print_json(result)
    else:
        print(f"{result['key']} = {format_value(result['value'])}  (saved to {result['config_file']})")
    return EXIT_OK
