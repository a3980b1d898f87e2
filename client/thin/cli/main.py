"""`branchpy`: the user CLI; this project provides its `telemetry` group (docs/cli.md).

Adding a command is one module in this folder (with `register(sub, parents)`
and `run(options) -> exit code`) plus one entry in `COMMAND_MODULES`.
Command modules import only light things at the top; zmq and friends load
inside `run`, so `--help` and start-up stay fast.
"""

from __future__ import annotations

import argparse
import sys

from branchpy_telemetry.client.contracts.errors import EXIT_FAILED, EXIT_USAGE, TelemetryError
from branchpy_telemetry.client.thin.cli import (
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

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of our output closed it

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
        code = run_guarded(run, options)
        sys.stdout.flush()  # a closed pipe shows here, inside the boundary, not at interpreter exit
        return code
    except BrokenPipeError:
        return quiet_broken_pipe()


def run_guarded(run, options: argparse.Namespace) -> int:
    """The last boundary: every failure becomes `error:` + `hint:` and an exit code, never a traceback."""
    try:
        return run(options)
    except BrokenPipeError:
        raise
    except TelemetryError as exc:
        return report_error(options, exc.code, exc.message, exc.hint, exc.exit_code)
    except KeyboardInterrupt:
        return report_error(options, "interrupted", "interrupted", None, EXIT_INTERRUPTED)
    except Exception as exc:
        return report_error(options, "internal_error", f"internal error ({type(exc).__name__}: {exc})",
                            "please report this with the command you ran", EXIT_FAILED)


def quiet_broken_pipe() -> int:
    """The reader went away (`| head`): stop without a word, as `cat` does.

    stdout is pointed at /dev/null so that the interpreter's final flush
    cannot raise again; the exit code is the shell's for a process ended by
    SIGPIPE (128 + 13), as 130 is for Ctrl-C."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


def report_error(options: argparse.Namespace, code: str, message: str, hint: str | None,
                 exit_code: int) -> int:
    if options.json:
        from branchpy_telemetry.client.thin.cli.render import print_json

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
