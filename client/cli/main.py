"""`branchpy`: the user CLI; this project provides its `telemetry` group (DESIGN §8).

Adding a command is one module in this folder (with `register(sub, parents)`
and `run(options) -> exit code`) plus one entry in `COMMAND_MODULES`.
Command modules import only light things at the top; zmq and friends load
inside `run`, so `--help` and start-up stay fast.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import EXIT_FAILED, EXIT_USAGE, TelemetryError
from . import (
    catalog,
    config,
    daemon,
    emit,
    export,
    history,
    mode,
    preview,
    purge,
    rotate,
    schema,
    status,
    sync,
    upload,
)

COMMAND_MODULES = (emit, export, preview, upload, sync, schema, catalog, status, mode, config, rotate,
                   history, purge, daemon)


class CliParser(argparse.ArgumentParser):
    """argparse, but usage errors look like every other error: `error:` + `hint:`, exit 2."""

    def error(self, message: str):  # type: ignore[override]
        sys.stderr.write(f"error: {message}\nhint: see `{self.prog} --help`\n")
        raise SystemExit(EXIT_USAGE)


def global_options() -> argparse.ArgumentParser:
    """--json/--timeout/--no-start, accepted before or after the command name."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("global options")
    group.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="machine-readable output on stdout")
    group.add_argument("--timeout", type=_positive_float, default=argparse.SUPPRESS, metavar="SECONDS",
                       help="seconds to wait for each try of a daemon reply")
    group.add_argument("--no-start", action="store_true", default=argparse.SUPPRESS,
                       help="do not start a daemon when none is running (exit 3 instead)")
    return parent


def build_parser() -> CliParser:
    parents = [global_options()]
    parser = CliParser(prog="branchpy", description="BranchPy command line.", parents=parents)
    groups = parser.add_subparsers(dest="group", metavar="GROUP")
    telemetry = groups.add_parser(
        "telemetry", parents=parents, help="local-first, privacy-preserving usage telemetry",
        description="Review, export and manage BranchPy telemetry. Commands talk to a per-user "
                    "daemon, which is started when needed (manual mode: it exits when idle).")
    commands = telemetry.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(commands, parents)
    return parser


def main(argv: list[str] | None = None) -> int:
    # No setup_logging() here, deliberately: the thin CLI reports through its output and exit
    # codes (never log lines), and importing structlog would cost every `status` ~40 ms of its
    # ≤ 2x start-up budget. The daemon, the bridge and the backend each call it once in main().
    parser = build_parser()
    options = parser.parse_args(argv)
    for name, default in (("json", False), ("timeout", None), ("no_start", False)):
        if not hasattr(options, name):
            setattr(options, name, default)
    run = getattr(options, "run", None)
    if run is None:
        parser.error("choose a command: branchpy telemetry COMMAND (see --help)")
    try:
        return run(options)
    except TelemetryError as exc:
        return report_error(options, exc.code, exc.message, exc.hint, exc.exit_code)
    except KeyboardInterrupt:
        return report_error(options, "interrupted", "interrupted", None, 130)
    except Exception as exc:  # the last boundary: never a traceback for users
        return report_error(options, "internal_error", f"internal error ({type(exc).__name__}: {exc})",
                            "please report this with the command you ran", EXIT_FAILED)


def report_error(options: argparse.Namespace, code: str, message: str, hint: str | None,
                 exit_code: int) -> int:
    if options.json:
        from .render import print_json

        body = {"code": code, "message": message, **({"hint": hint} if hint else {})}
        print_json({"ok": False, "error": body})
    sys.stderr.write(f"error: {message}\n")
    if hint:
        sys.stderr.write(f"hint: {hint}\n")
    return exit_code


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
    return value


if __name__ == "__main__":
    sys.exit(main())
