"""`branchpy-telemetry-backend install [--print]`: run the backend (and its daily retention) under systemd.

Writes the three units (backend/service_units.py) for the console script of
this interpreter into /etc/systemd/system, the database URLs (if `--db`) into
a root-only environment file, then `systemctl daemon-reload` and `enable
--now` the backend and the retention timer, and prints how to create the
first keys. Needs root; `--print` only prints the units (and the commands).
"""

from __future__ import annotations

import argparse
import os
import pwd
import sys
from pathlib import Path

from branchpy_telemetry.backend.service_units import (
    BACKEND_UNIT,
    ENV_FILE,
    RETENTION_TIMER,
    BackendServiceOptions,
    install_paths,
    key_command,
    render_env_file,
    render_units,
    unreadable_by_others,
)
from branchpy_telemetry.backend.sinks.registry import redact_url
from branchpy_telemetry.client.contracts.errors import EXIT_OK, ServiceInstallError, UsageError
from branchpy_telemetry.client.infra.atomic_write import write_atomic
from branchpy_telemetry.client.infra.unit_text import run_systemctl, write_unit

SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
NEW_USER_HINT = "create a service user: sudo useradd --system --no-create-home NAME"


def add_install_parser(sub) -> None:
    install = sub.add_parser("install", help="run the backend and its daily retention under systemd "
                                             "(or --print the units)",
                             description="Write the systemd units for this install's console script into "
                                         "/etc/systemd/system, then `systemctl daemon-reload` and "
                                         "`enable --now` the backend and the retention timer. Needs root. "
                                         "With --print, only print the units.")
    install.add_argument("--print", dest="print_only", action="store_true",
                         help="print the units and the key commands on stdout; change nothing")
    install.add_argument("--db", action="append", default=[], metavar="URL",
                         help="database URL(s), kept in a root-only environment file (default: SQLite in "
                              "/var/lib/branchpy-telemetry)")
    install.add_argument("--host", default="127.0.0.1")
    install.add_argument("--port", type=int, default=8787)
    install.add_argument("--workers", type=int, metavar="N")
    install.add_argument("--user", dest="run_as", metavar="NAME",
                         help="run as this existing user (default: a dynamic user when every user can "
                              "read the install)")
    # where the files go: for tests and packagers (the units name ENV_FILE whatever this says)
    install.add_argument("--unit-dir", type=Path, default=SYSTEM_UNIT_DIR, help=argparse.SUPPRESS)
    install.add_argument("--env-file", type=Path, default=ENV_FILE, help=argparse.SUPPRESS)
    install.set_defaults(handler=cmd_install)


def exec_path() -> Path:
    """The backend console script next to this interpreter."""
    return Path(sys.executable).parent / "branchpy-telemetry-backend"


def service_options(args) -> BackendServiceOptions:
    script = exec_path()
    if not script.exists():
        raise ServiceInstallError(f"{script} does not exist",
                                  hint="install the package with pip (it creates the console scripts)")
    run_as = args.run_as
    if run_as is not None:
        try:
            uid = pwd.getpwnam(run_as).pw_uid
        except KeyError:
            raise UsageError(f"--user {run_as}: no such user", hint=NEW_USER_HINT) from None
        if uid == 0 or run_as == "nobody":  # root: no isolation; nobody: shared by unrelated services
            raise UsageError(f"--user {run_as}: the service must not run as {run_as}", hint=NEW_USER_HINT)
    else:
        blocked = unreadable_by_others(install_paths(script))
        if blocked is not None:
            raise ServiceInstallError(
                f"a dynamic service user could not run this install: {blocked} is not readable by other "
                "users",
                hint="install into a folder every user can read (e.g. `sudo python3 -m venv "
                     "/opt/branchpy-telemetry && sudo /opt/branchpy-telemetry/bin/pip install .`), or run "
                     "the service as a user who can read it: --user NAME")
    return BackendServiceOptions(exec_path=str(script), host=args.host, port=args.port,
                                 workers=args.workers, run_as=run_as)


def cmd_install(args, settings) -> int:
    options = service_options(args)
    units = render_units(options)
    keys = [key_command(options, "ingest"), key_command(options, "read")]
    if args.print_only:
        for name, text in units.items():
            print(f"# --- {args.unit_dir / name}")
            sys.stdout.write(text)
        if args.db:
            print(f"# --- {args.env_file} (mode 0600; passwords hidden here, written as given)")
            sys.stdout.write(render_env_file([redact_url(url) for url in args.db]))
        return EXIT_OK
    if os.geteuid() != 0 and args.unit_dir == SYSTEM_UNIT_DIR:
        raise ServiceInstallError("installing system services needs root",
                                  hint="run it with sudo, or see the units with --print")
    try:
        for name, text in units.items():
            write_unit(args.unit_dir / name, text)
            print(f"wrote {args.unit_dir / name}")
        if args.db:
            write_env_file(args.env_file, render_env_file(args.db))
            print(f"wrote {args.env_file} (root only: the database URL may hold a password)")
    except OSError as exc:
        raise ServiceInstallError(f"cannot write the units: {exc.strerror or exc}") from None
    for command in (["daemon-reload"], ["enable", "--now", BACKEND_UNIT, RETENTION_TIMER]):
        systemctl(command)
    where = f"http://{args.host}:{args.port}"
    print(f"enabled and started {BACKEND_UNIT} ({where}) and {RETENTION_TIMER} (daily purge)")
    print("create the first keys (each is printed once):")
    print(f"  ingest, for the daemons:  {keys[0]}")
    print(f"  read, for the dashboard:  {keys[1]}")
    print(f"then open {where}/dashboard#key=READ_KEY; logs: journalctl -u branchpy-telemetry-backend")
    return EXIT_OK


def write_env_file(path: Path, text: str) -> None:
    """0600, atomically, owned by whoever runs install (root): the URL may hold a password."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    write_atomic(path, text.encode())


def systemctl(args: list[str]) -> None:
    run_systemctl(["systemctl", *args],
                  hint="the units are written; once systemd runs, start them with `systemctl daemon-reload "
                       f"&& systemctl enable --now {BACKEND_UNIT} {RETENTION_TIMER}`")
