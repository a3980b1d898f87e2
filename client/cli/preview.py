"""`branchpy telemetry preview FILE`: exactly what would be sent, and what was removed."""

from __future__ import annotations

import argparse
import os

from ..errors import EXIT_OK, EXIT_REJECTED


def register(sub, parents: list[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "preview", parents=parents, help="review a package before it is sent",
        description="Show a package's content and its redaction report (counts per rule and JSON "
                    "pointers, never the removed values). Exit 4 if the package breaks a rule.")
    parser.add_argument("file", metavar="FILE", help="a package written by `export`")
    parser.set_defaults(run=run)


def run(options: argparse.Namespace) -> int:
    from .remote import call_daemon

    result = call_daemon(options, "preview", {"file": os.path.abspath(options.file)}, long=True)
    if options.json:
        from .render import print_json

        print_json(result)
    else:
        print_review(os.path.abspath(options.file), result)
    return EXIT_OK if result.get("valid", True) else EXIT_REJECTED


def print_review(path: str, result: dict) -> None:
    import json

    violations = result.get("violations") or []
    print(f"package: {path}")
    print("valid:   " + ("yes" if result.get("valid", True) else f"NO ({len(violations)} violation(s))"))
    for violation in violations:
        print(f"  ! {violation.get('pointer', '?')}: {violation.get('rule', '?')}"
              if isinstance(violation, dict) else f"  ! {violation}")
    for section in ("redaction_report", "summary", "performance_metrics", "usage_statistics", "errors"):
        if section in result:
            print(f"\n== {section.replace('_', ' ')} ==")
            print(json.dumps(result[section], indent=2, ensure_ascii=False, default=str))
    events = result.get("events") or []
    print(f"\n== events ({len(events)}) ==")
    for event in events:
        if not isinstance(event, dict):
            print(json.dumps(event, ensure_ascii=False, default=str))
            continue
        head = f"{event.get('ts', '?')}  {event.get('category', '?')}/{event.get('name', '?')}"
        if event.get("status"):
            head += f"  {event['status']}"
        if event.get("duration_ms") is not None:
            head += f"  {event['duration_ms']}ms"
        rest = {k: v for k, v in event.items()
                if k not in ("ts", "category", "name", "status", "duration_ms") and v is not None}
        print(head + ("  " + json.dumps(rest, ensure_ascii=False, default=str) if rest else ""))
