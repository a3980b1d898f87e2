"""`branchpy telemetry catalog [check FILE]`: what may be collected, or whether a catalog file is valid."""

from __future__ import annotations

import argparse
import os

from branchpy_telemetry.client.contracts.errors import EXIT_OK, EXIT_REJECTED


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "catalog", parents=parents, help="what may be collected (the event catalog)",
        description="List every event and attribute that may leave this machine, with what it means, who "
                    "owns it and when its collection ends. Nothing else is ever exported. "
                    "`catalog check FILE` validates a catalog file (exit 4 when it is not valid).")
    parser.add_argument("action", nargs="?", choices=["check"], help="check: validate FILE")
    parser.add_argument("file", nargs="?", metavar="FILE", help="with check: the catalog file to validate")
    parser.set_defaults(run=run, parser=parser)


def run(options: argparse.Namespace) -> int:
    from branchpy_telemetry.client.thin.cli.remote import call_daemon

    if options.action == "check":
        if not options.file:
            options.parser.error("catalog check needs a FILE")
        result = call_daemon(options, "catalog", {"check": os.path.abspath(options.file)})
        print_check(options, result)
        return EXIT_OK if result.get("valid") else EXIT_REJECTED
    if options.file:
        options.parser.error("a FILE goes with `catalog check FILE`")
    print_catalog(options, call_daemon(options, "catalog"))
    return EXIT_OK


def print_check(options: argparse.Namespace, result: dict) -> None:
    from branchpy_telemetry.client.thin.cli.render import print_json

    if options.json:
        print_json(result)
        return
    if result.get("valid"):
        expired = result.get("expired") or []
        print(f"valid: {result['file']}: catalog {result['id']} {result['revision']}, {result['events']} "
              f"event(s){', expired: ' + ', '.join(expired) if expired else ''}")
        return
    print(f"not valid: {result['file']}")
    for problem in result.get("problems") or []:
        print(f"  {problem.get('entry')}: {problem.get('problem')}")


def print_catalog(options: argparse.Namespace, catalog: dict) -> None:
    from branchpy_telemetry.client.thin.cli.render import print_json

    if options.json:
        print_json(catalog)
        return
    print(f"Catalog {catalog['id']} {catalog['revision']} ({catalog.get('source', 'bundled')})")
    print("Only these events and attributes ever leave this machine; everything else is dropped on export.")
    print("Error messages never leave: only a declared code (pattern "
          f"{catalog['errors']['code_pattern'] or 'none'}), the exception type and a hash of the message's "
          "template.")
    for event in catalog["events"]:
        status = "expired — no longer collected" if event["expired"] else (
            "no end date" if event["expires"] == "never" else f"until {event['expires']}")
        print(f"\n{event['category']}/{event['name']}  ({status}; owner {event['owner']})")
        print(f"  {event['description']}")
        for key, attr in event["attrs"].items():
            print(f"    {key:<16} {describe_attr(attr)}")


_PLAIN_TYPES = {"bool": "true/false", "version": "a version number", "duration_ms": "milliseconds"}


def describe_attr(attr: dict) -> str:
    kind = attr.get("type")
    if kind == "enum":
        text = "one of " + ", ".join(attr.get("values") or [])
    elif kind in ("int", "float") and (attr.get("min") is not None or attr.get("max") is not None):
        text = f"{kind} {attr.get('min', '…')}..{attr.get('max', '…')}"
    elif kind == "pattern":
        text = f"text matching {attr.get('regex')}"
    else:
        text = _PLAIN_TYPES.get(kind, kind)
    return text + (f" — {attr['description']}" if attr.get("description") else "")
