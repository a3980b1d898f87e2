"""Where everything lives (DESIGN §3): the one module that wraps platformdirs.

`BRANCHPY_TELEMETRY_HOME=<dir>` relocates everything. Nothing else in the
project may compute a location on its own; pass a `TelemetryPaths` down.
Nothing here touches the disk at import; `ensure_*` helpers create folders
on demand with private permissions.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "branchpy"
HOME_ENV = "BRANCHPY_TELEMETRY_HOME"
# sun_path is 108 bytes on Linux (104 on macOS) including the NUL.
MAX_IPC_PATH_BYTES = 100 if sys.platform == "darwin" else 107


@dataclass(frozen=True, slots=True)
class TelemetryPaths:
    config_file: Path
    data_dir: Path
    spool_dir: Path
    outbox_dir: Path
    quarantine_dir: Path
    ledger_file: Path
    checkpoints_file: Path
    install_file: Path
    counters_file: Path
    run_dir: Path
    log_dir: Path
    extension_dir: Path

    @property
    def config_dir(self) -> Path:
        return self.config_file.parent

    @property
    def active_spool(self) -> Path:
        return self.spool_dir / "events.jsonl"

    @property
    def daemon_log(self) -> Path:
        return self.log_dir / "daemon.log"

    @property
    def daemon_lock(self) -> Path:
        return self.run_dir / "daemon.lock"

    @property
    def control_socket(self) -> Path:
        return self.run_dir / "control.sock"

    @property
    def progress_socket(self) -> Path:
        return self.run_dir / "progress.sock"

    @property
    def control_endpoint(self) -> str:
        return "ipc://" + str(self.control_socket)

    @property
    def progress_endpoint(self) -> str:
        return "ipc://" + str(self.progress_socket)


def resolve_paths(env: os._Environ[str] | dict[str, str] | None = None) -> TelemetryPaths:
    """Compute every location from the environment (no disk writes)."""
    env = os.environ if env is None else env
    home = env.get(HOME_ENV)
    if home:
        root = Path(home).expanduser().absolute()
        config_dir, data_dir = root / "config", root / "state"
        run_dir, log_dir = root / "run", root / "log"
        extension_dir = root / "extension"
    else:
        config_dir = Path(platformdirs.user_config_dir(APP_NAME))
        data_dir = Path(platformdirs.user_data_dir(APP_NAME)) / "telemetry"
        run_dir = _default_runtime_dir(env)
        log_dir = Path(platformdirs.user_log_dir(APP_NAME))
        extension_dir = vscode_global_storage_dir() / "branchpy.branchpy" / "telemetry"
    run_dir = _short_enough_run_dir(run_dir)
    return TelemetryPaths(
        config_file=config_dir / "telemetry.toml",
        data_dir=data_dir,
        spool_dir=data_dir / "spool",
        outbox_dir=data_dir / "outbox",
        quarantine_dir=data_dir / "quarantine",
        ledger_file=data_dir / "ledger.jsonl",
        checkpoints_file=data_dir / "checkpoints.json",
        install_file=data_dir / "install.json",
        counters_file=data_dir / "counters.json",
        run_dir=run_dir,
        log_dir=log_dir,
        extension_dir=extension_dir,
    )


def vscode_global_storage_dir() -> Path:
    """VS Code's `…/Code/User/globalStorage` folder for this platform."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "Code" / "User" / "globalStorage"


def _default_runtime_dir(env) -> Path:
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir():
        return Path(xdg) / APP_NAME
    if sys.platform == "darwin":
        return Path(platformdirs.user_runtime_dir(APP_NAME))
    # No user runtime directory (containers, cron, su): private fallback.
    return _fallback_run_dir("no-runtime-dir:" + str(Path.home()))


def _short_enough_run_dir(run_dir: Path) -> Path:
    longest = run_dir / "progress.sock"
    if len(os.fsencode(str(longest))) <= MAX_IPC_PATH_BYTES:
        return run_dir
    return _fallback_run_dir(str(run_dir))


def _fallback_run_dir(key: str) -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"branchpy-{uid}-{digest}"


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) and make sure only this user can use it."""
    path.mkdir(parents=True, exist_ok=True)
    if os.name == "posix":
        st = path.stat()
        if st.st_uid != os.getuid():
            raise PermissionError(f"{path} is owned by another user (uid {st.st_uid})")
        if st.st_mode & 0o077:
            path.chmod(0o700)
    return path
