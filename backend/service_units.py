"""The backend's systemd system units, written for the interpreter of this install.

`render_units` is the one source of `branchpy-telemetry-backend.service`,
`branchpy-telemetry-retention.service` and `.timer`: `branchpy-telemetry-backend
install` writes them, `--print` shows them, and the files shipped in systemd/
are its output for `/usr/local/bin` (a test keeps them equal).

Who the service runs as: a dynamic user (`DynamicUser=yes`, the safest) when
every user can read the install (the console script, the interpreter and the
package's source); otherwise the user named with `--user` (e.g. the owner of
a virtualenv in a home folder other users cannot enter), with the home
folders read-only. The database URL (it may hold a password) lives in an
environment file readable by root only, never on the command line.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

from branchpy_telemetry.client.infra.unit_text import command_line, documentation_links

BACKEND_UNIT = "branchpy-telemetry-backend.service"
RETENTION_UNIT = "branchpy-telemetry-retention.service"
RETENTION_TIMER = "branchpy-telemetry-retention.timer"
DYNAMIC_USER = "branchpy-telemetry"
STATE_DIR = Path("/var/lib/branchpy-telemetry")
ENV_FILE = Path("/etc/branchpy-telemetry/backend.env")
DB_URLS_VARIABLE = "BRANCHPY_TELEMETRY_BACKEND_DB_URLS"
SHIPPED_EXEC = "/usr/local/bin/branchpy-telemetry-backend"

HEADER = """\
# {what}
#
# Written by `branchpy-telemetry-backend install` for the interpreter it ran from
# (`branchpy-telemetry-backend install --print` shows the units without installing).
# Database: the SQLite default under {state_dir}/.branchpy/telemetry/
# (the working directory), or the URLs in {env_file}
# ({db_variable}=mysql://…; root only: a URL may hold a password).
"""

KEYS_NOTE = """\
#
# Create the first API keys (each is printed once): an ingest key for the daemons
# (`branchpy telemetry config set telemetry.api_key KEY`) and a read key for the dashboard:
#   {ingest}
#   {read}
"""

RUN_AS_DYNAMIC = """\
# The same user name in the retention unit: both share one dynamic UID and the state folder.
DynamicUser=yes
User={user}"""

RUN_AS_USER = """\
# Runs as {user}: the install is not readable by every user (a dynamic user could not run it).
User={user}"""

SERVICE_BODY = """\
StateDirectory=branchpy-telemetry
StateDirectoryMode=0700
WorkingDirectory={state_dir}
EnvironmentFile=-{env_file}
Environment=PYTHONUNBUFFERED=1

# Hardening (DynamicUser= implies the first five too; spelled out for a named user).
ProtectSystem=strict
PrivateTmp=yes
NoNewPrivileges=yes
RestrictSUIDSGID=yes
RemoveIPC=yes
ProtectHome={protect_home}
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
CapabilityBoundingSet=
AmbientCapabilities=
UMask=0077
"""

BACKEND = """\
[Unit]
Description=BranchPy telemetry ingestion backend (Flask API under waitress)
Documentation={documentation}
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={exec_start} serve --host {host} --port {port}{workers}
Restart=on-failure
RestartSec=5s
{run_as}
{body}
[Install]
WantedBy=multi-user.target
"""

RETENTION = """\
[Unit]
Description=BranchPy telemetry backend retention (purge events older than {older_than})
Documentation={documentation}

[Service]
Type=oneshot
ExecStart={exec_start} purge --older-than {older_than}
# Same user, state folder, working directory and environment file as the backend: same database.
{run_as}
Nice=10
IOSchedulingClass=idle
{body}"""

TIMER = """\
# Runs branchpy-telemetry-retention.service once a day; a run missed while the
# machine was off happens at the next boot (Persistent=true).
#   systemctl enable --now branchpy-telemetry-retention.timer
#   systemctl list-timers branchpy-telemetry-retention.timer

[Unit]
Description=Daily BranchPy telemetry backend retention
Documentation={documentation}

[Timer]
OnCalendar=daily
Persistent=true
RandomizedDelaySec=30min
AccuracySec=5min

[Install]
WantedBy=timers.target
"""


@dataclass(frozen=True)
class BackendServiceOptions:
    exec_path: str  # the backend's console script (absolute)
    host: str = "127.0.0.1"
    port: int = 8787
    workers: int | None = None
    run_as: str | None = None  # None: a dynamic user
    older_than: str = "90d"
    local_docs: bool = True


def key_command(options: BackendServiceOptions, scope: str) -> str:
    """`systemd-run` that creates a key as the service's user, in its folder, with its database."""
    user = ["-p", "DynamicUser=yes", "-p", f"User={DYNAMIC_USER}"] if options.run_as is None \
        else ["-p", f"User={options.run_as}"]
    return command_line(["sudo", "systemd-run", "--quiet", "--pipe", "--wait", "--collect", *user,
                         "-p", "StateDirectory=branchpy-telemetry", "-p", f"WorkingDirectory={STATE_DIR}",
                         "-p", f"EnvironmentFile=-{ENV_FILE}", options.exec_path, "keys", "create",
                         "--scope", scope]).replace("%%", "%")


def render_units(options: BackendServiceOptions) -> dict[str, str]:
    """Unit file name -> text."""
    documentation = documentation_links() if options.local_docs else documentation_links().split()[-1]
    exec_start = command_line([options.exec_path])
    header = dict(state_dir=STATE_DIR, env_file=ENV_FILE, db_variable=DB_URLS_VARIABLE)
    run_as = (RUN_AS_DYNAMIC.format(user=DYNAMIC_USER) if options.run_as is None
              else RUN_AS_USER.format(user=options.run_as))
    body = SERVICE_BODY.format(state_dir=STATE_DIR, env_file=ENV_FILE,
                               protect_home="yes" if options.run_as is None else "read-only")
    keys = KEYS_NOTE.format(ingest=key_command(options, "ingest"), read=key_command(options, "read"))
    backend = (HEADER.format(what="BranchPy telemetry ingestion backend: a system service.", **header) + keys
               + "\n" + BACKEND.format(documentation=documentation, exec_start=exec_start, host=options.host,
                                       port=options.port, run_as=run_as, body=body,
                                       workers=f" --workers {options.workers}" if options.workers else ""))
    retention = (HEADER.format(what=f"Server-side retention: delete stored events older than "
                                    f"{options.older_than}, daily (see the .timer).", **header)
                 + "\n" + RETENTION.format(documentation=documentation, exec_start=exec_start, run_as=run_as,
                                           body=body, older_than=options.older_than))
    return {BACKEND_UNIT: backend, RETENTION_UNIT: retention, RETENTION_TIMER: TIMER.format(
        documentation=documentation)}


def render_env_file(db_urls: list[str]) -> str:
    return ("# Read by the BranchPy telemetry backend units (EnvironmentFile=); root only: it may hold "
            "a password.\n" + f"{DB_URLS_VARIABLE}={','.join(db_urls)}\n")


def unreadable_by_others(paths: list[Path]) -> Path | None:
    """The first of `paths` (or a folder above one) that a user other than its owner cannot
    read or enter; None when every user can run this install."""
    for path in paths:
        path = path.resolve()
        for folder in [*reversed(path.parents), *([path] if path.is_dir() else [])]:
            if not folder.stat().st_mode & stat.S_IXOTH:
                return folder
        if path.is_file() and not path.stat().st_mode & stat.S_IROTH:
            return path
    return None


def install_paths(exec_path: Path) -> list[Path]:
    """What the service must read to run: the console script, its interpreter and the package's code."""
    import sys

    import branchpy_telemetry.backend
    import branchpy_telemetry.client
    import branchpy_telemetry.daemon

    sources = [Path(module.__file__).parent for module in
               (branchpy_telemetry.client, branchpy_telemetry.daemon, branchpy_telemetry.backend)]
    return [exec_path, Path(sys.executable), *sources]
