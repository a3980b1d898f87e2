"""`branchpy telemetry daemon install [--print]`: run the daemon as a systemd user service.

Writes `branchpy-telemetryd.service` for the interpreter this command runs
from (its venv, pipx or system install) and this user's folders into
`~/.config/systemd/user/`, stops a daemon the CLI had started (systemd's
would find it holding the lock), then `systemctl --user daemon-reload` and
`enable --now`. `--print` only prints the unit.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from branchpy_telemetry.client.contracts.errors import EXIT_OK, ServiceInstallError

STOP_TIMEOUT_S = 10.0


def register(actions, parents: list[argparse.ArgumentParser]) -> None:
    install = actions.add_parser(
        "install", parents=parents, help="run the daemon as a systemd user service (or --print the unit)",
        description="Write the systemd user unit for the interpreter this command runs from into "
                    "~/.config/systemd/user/, then `systemctl --user daemon-reload` and "
                    "`enable --now branchpy-telemetryd.service`. With --print, only print the unit.")
    install.add_argument("--print", dest="print_only", action="store_true",
                         help="print the unit on stdout and change nothing")
    install.set_defaults(run=run_install)


def build_unit() -> str:
    from branchpy_telemetry.client.contracts.config import load_config
    from branchpy_telemetry.client.contracts.errors import ConfigError
    from branchpy_telemetry.client.contracts.paths import resolve_paths
    from branchpy_telemetry.client.thin.daemon_unit import (
        exec_start_for_this_install,
        render_daemon_unit,
        unit_places,
    )

    paths = resolve_paths()
    try:
        extension_dir = load_config(paths.config_file, env={}).telemetry.sources.extension_dir
    except ConfigError:
        extension_dir = None  # the daemon will say what is wrong with the file when it starts
    places = unit_places(paths, os.environ, home=Path.home(), extension_dir=extension_dir)
    return render_daemon_unit(exec_start_for_this_install(), places)


def run_install(options: argparse.Namespace) -> int:
    from branchpy_telemetry.client.infra.unit_text import write_unit
    from branchpy_telemetry.client.thin.daemon_unit import UNIT_NAME, user_unit_dir

    text = build_unit()
    if options.print_only:
        sys.stdout.write(text)
        return EXIT_OK
    unit_file = user_unit_dir(os.environ, Path.home()) / UNIT_NAME
    try:
        write_unit(unit_file, text)
    except OSError as exc:
        raise ServiceInstallError(f"cannot write {unit_file}: {exc.strerror or exc}",
                                  hint="check that folder is yours and writable") from None
    print(f"wrote {unit_file}")
    stopped = stop_cli_daemon()
    if stopped:
        print(f"stopped the daemon the CLI had started (pid {stopped}); systemd runs it from now on")
    for args in (["daemon-reload"], ["enable", "--now", UNIT_NAME]):
        systemctl_user(args, unit_file)
    print(f"enabled and started {UNIT_NAME} (it starts again at each login)")
    print("  status: systemctl --user status branchpy-telemetryd")
    print("  logs:   journalctl --user -u branchpy-telemetryd -f")
    print("  keep it running while you are logged out: loginctl enable-linger $USER")
    return EXIT_OK


def stop_cli_daemon() -> int | None:
    """Stop a daemon started by the CLI (not by systemd); its pid, or None if none ran."""
    from branchpy_telemetry.client.contracts.paths import resolve_paths
    from branchpy_telemetry.client.thin.daemon_launcher import is_listening, wait_until_stopped
    from branchpy_telemetry.client.thin.ipc import open_control_client

    paths = resolve_paths()
    if not is_listening(paths):
        return None
    with open_control_client(paths, timeout=5.0) as client:
        pid = client.call("shutdown").get("pid")
    if not wait_until_stopped(paths, pid, STOP_TIMEOUT_S):
        raise ServiceInstallError(f"the running daemon (pid {pid}) did not stop",
                                  hint="stop it (`branchpy telemetry daemon stop`) and run install again")
    return pid


def systemctl_user(args: list[str], unit_file: Path) -> None:
    from branchpy_telemetry.client.infra.unit_text import run_systemctl

    run_systemctl(["systemctl", "--user", *args],
                  hint=f"the unit is written ({unit_file}); once your user manager runs, start it with "
                       "`systemctl --user daemon-reload && systemctl --user enable --now "
                       "branchpy-telemetryd`; until then the CLI starts the daemon when needed")
