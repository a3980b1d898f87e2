"""The daemon's systemd user unit, written for the interpreter and folders of this install.

`render_daemon_unit` is the one source of `branchpy-telemetryd.service`:
`branchpy telemetry daemon install` writes what it returns, `--print` shows
it, and the file shipped in systemd/ is its output for a `pipx` install
(`%h/.local/bin/branchpy-telemetryd`; a test keeps the two equal).

Hardening: everything a user service can use (with `PrivateUsers=`, which
the mount-namespace options need there anyway): read-only system and home
except the daemon's own folders, no devices, no capabilities, no kernel
knobs, a system-call allow-list, only Unix and IP sockets (the control
socket and the uploads). `systemd-analyze security --offline=true` rates
it 1.9 "OK" (the test's limit is 4.0). What a user service cannot use
(`ProtectProc=`, `ProcSubset=`, `ProtectControlGroups=`, `RemoveIPC=`) and
what the daemon needs (network, its folders) is left out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from branchpy_telemetry.client.contracts.paths import HOME_ENV, TelemetryPaths
from branchpy_telemetry.client.infra.unit_text import (
    command_line,
    documentation_links,
    environment_line,
    with_specifiers,
)

UNIT_NAME = "branchpy-telemetryd.service"
PIPX_EXEC = "%h/.local/bin/branchpy-telemetryd"
XDG_VARIABLES = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")

TEMPLATE = """\
# BranchPy telemetry daemon: a per-user (systemd --user) service.
#
# Written by `branchpy telemetry daemon install` for the interpreter it ran from
# (`branchpy telemetry daemon install --print` shows it without installing). By hand:
#   install -Dm644 branchpy-telemetryd.service ~/.config/systemd/user/branchpy-telemetryd.service
#   systemctl --user daemon-reload
#   systemctl --user enable --now branchpy-telemetryd.service
#   journalctl --user -u branchpy-telemetryd -f
#
# The sandboxing below needs unprivileged user namespaces (PrivateUsers=). If the
# service fails with status=226/NAMESPACE on your system, turn off PrivateUsers=,
# PrivateDevices=, PrivateMounts=, PrivateTmp=, ProtectSystem= and ProtectHome= in
# a drop-in (`systemctl --user edit branchpy-telemetryd`).

[Unit]
Description=BranchPy telemetry daemon (local spool, export, upload)
Documentation={documentation}
StartLimitIntervalSec=10min
StartLimitBurst=5

[Service]
Type=notify
NotifyAccess=main
# Under systemd the daemon never idles out; the CLI talks to it over the control socket.
ExecStart={exec_start} --idle-timeout 0
# Create the writable folders before the sandbox is set up ("+" runs unsandboxed).
ExecStartPre=+/bin/mkdir -p {make_dirs}
Restart=on-failure
RestartSec=5s
# The daemon sends WATCHDOG=1 every WatchdogSec/2 (sd_notify); a hung daemon is restarted.
WatchdogSec=60s
TimeoutStartSec=30s
TimeoutStopSec=30s
Environment=PYTHONUNBUFFERED=1
{environment}
# Hardening (systemd-analyze security --offline=true: 1.9 OK).
NoNewPrivileges=yes
PrivateUsers=yes
CapabilityBoundingSet=
AmbientCapabilities=
KeyringMode=private
ProtectSystem=strict
ProtectHome=read-only
ReadWritePaths={writable}
# Logs when not under journald, and the VS Code extension's JSONL folder (rotation/retention).
StateDirectory=branchpy
ReadWritePaths=-{extension}
PrivateTmp=yes
PrivateDevices=yes
PrivateMounts=yes
ProtectClock=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
LockPersonality=yes
MemoryDenyWriteExecute=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM
UMask=0077

[Install]
WantedBy=default.target
"""


@dataclass(frozen=True)
class UnitPlaces:
    """Where the daemon will read and write, as the unit names them."""

    writable: list[str]  # folders it writes (created by ExecStartPre)
    extension: str  # the extension's folder (optional: `-` prefix)
    environment: list[str]  # Environment= lines that make the daemon find the same folders


def unit_places(paths: TelemetryPaths, env: os._Environ[str] | dict[str, str], *, home: Path,
                extension_dir: str | None = None) -> UnitPlaces:
    runtime = env.get("XDG_RUNTIME_DIR") or None
    spec = lambda p: with_specifiers(Path(p), home=home, runtime_dir=runtime)  # noqa: E731
    relocated = env.get(HOME_ENV)
    if relocated:
        root = Path(relocated).expanduser().absolute()
        return UnitPlaces(writable=[spec(root)], extension=spec(Path(extension_dir or paths.extension_dir)),
                          environment=[environment_line(HOME_ENV, str(root))])
    environment = [environment_line(name, env[name]) for name in XDG_VARIABLES if env.get(name)]
    data_root = paths.data_dir.parent  # the user's data folder for branchpy (state is in it)
    extension = Path(extension_dir) if extension_dir else paths.extension_dir.parent
    return UnitPlaces(writable=[spec(data_root), spec(paths.config_dir), "%t/branchpy"],
                      extension=spec(extension), environment=environment)


def render_daemon_unit(exec_start: str, places: UnitPlaces, *, local_docs: bool = True) -> str:
    documentation = documentation_links() if local_docs else documentation_links().split()[-1]
    environment = "\n".join(places.environment)
    text = TEMPLATE.format(documentation=documentation, exec_start=exec_start,
                           make_dirs=" ".join(places.writable), writable=" ".join(places.writable),
                           extension=places.extension, environment=environment)
    return text.replace("Environment=PYTHONUNBUFFERED=1\n\n", "Environment=PYTHONUNBUFFERED=1\n")


def exec_start_for_this_install() -> str:
    """The daemon's console script next to this interpreter (else `python -m`), quoted for systemd."""
    from branchpy_telemetry.client.thin.daemon_launcher import daemon_command

    return command_line(daemon_command())


def user_unit_dir(env: os._Environ[str] | dict[str, str], home: Path) -> Path:
    config_home = env.get("XDG_CONFIG_HOME") or str(home / ".config")
    return Path(config_home) / "systemd" / "user"

