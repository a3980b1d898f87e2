"""Where everything lives: the one module that wraps platformdirs.

`BRANCHPY_TELEMETRY_HOME=<dir>` relocates everything. Nothing else in the
project may compute a location on its own; pass a `TelemetryPaths` down.
Nothing here touches the disk at import; `ensure_private_dir` creates
folders on demand with private permissions and refuses one that is not this
user's own.

The socket folder (`run_dir`) must be one no other user can create or swap:
`$XDG_RUNTIME_DIR/branchpy` when that runtime dir is this user's and private;
otherwise (no runtime dir in containers, cron, ssh; or one open to others
such as `/tmp`) `<user state dir>/branchpy/run`, inside the user's own home.
A path too long for a Unix socket moves to `<user state dir>/branchpy/run-<hash>`.
The old fallback, `/tmp/branchpy-UID-HASH`, was a name any user could
compute and create first.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
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
    def exports_file(self) -> Path:
        """The package files `export` wrote, with their sha256 (`daemon/export/package_records.py`)."""
        return self.data_dir / "exports.jsonl"

    @property
    def reviews_file(self) -> Path:
        """The package bytes `preview` showed and found VALID (`daemon/export/package_records.py`)."""
        return self.data_dir / "reviews.jsonl"

    @property
    def staging_dir(self) -> Path:
        """Where `upload --auto` and auto mode export a window before sending it."""
        return self.data_dir / "staging"

    @property
    def local_backend_keys_file(self) -> Path:
        """The local stack's ingest and read keys (`branchpy-telemetry-backend up`)."""
        return self.config_dir / "local-backend.json"

    @property
    def daemon_log(self) -> Path:
        return self.log_dir / "daemon.log"

    @property
    def daemon_lock(self) -> Path:
        return self.run_dir / "daemon.lock"

    @property
    def control_address_file(self) -> Path:
        """Where the daemon publishes its tcp address and token (tcp transport only)."""
        return self.run_dir / "control.json"

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
    if xdg and _is_own_private_dir(Path(xdg)):
        return Path(xdg) / APP_NAME
    if sys.platform == "darwin":
        return Path(platformdirs.user_runtime_dir(APP_NAME))
    # No private user runtime directory (containers, cron, su, or one open to
    # others such as XDG_RUNTIME_DIR=/tmp): a folder in this user's own state
    # directory, where no other user can create anything.
    return Path(platformdirs.user_state_dir(APP_NAME)) / "run"


def _short_enough_run_dir(run_dir: Path) -> Path:
    if _fits(run_dir):
        return run_dir
    digest = hashlib.sha256(str(run_dir).encode()).hexdigest()[:16]
    return Path(platformdirs.user_state_dir(APP_NAME)) / f"run-{digest}"


def _fits(run_dir: Path) -> bool:
    return len(os.fsencode(str(run_dir / "progress.sock"))) <= MAX_IPC_PATH_BYTES


def _is_own_private_dir(path: Path) -> bool:
    if os.name != "posix":
        return path.is_dir()
    try:
        st = path.stat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def private_dir_problem(path: Path) -> str | None:
    """Why no client may trust `path` as this user's socket folder, or None.

    Refused: a symlink (never followed), not a folder, another user's folder,
    one that group or others may write to (they could put their own socket
    in it), one in a parent folder every user may write to without the
    sticky bit (they could swap it). A folder of ours that others may only
    read is accepted: nothing can be placed in it, and the daemon makes it
    0700 when it starts. Raises FileNotFoundError when `path` does not exist.
    """
    st = os.lstat(path)
    return _not_ours(path, st) or _writable_by_others(path, st, 0o022) or _swappable(path)


def ensure_private_dir(path: Path, *, strict: bool = False) -> Path:
    """Create `path` 0700 (parents as usual) or make sure an existing one is this user's own.

    Refused (PermissionError naming the problem; FileExistsError when it is
    not a folder): a symlink, another user's folder, a parent anyone could
    swap it in, and a folder every user may write to — or, when `strict`
    (the socket folder), group members too: what they may have put in it
    cannot be trusted. Any other folder of ours is tightened to 0700 through
    a descriptor opened with O_NOFOLLOW, never through a symlink.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    if os.name != "posix":
        return path
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) and not stat.S_ISLNK(st.st_mode):
        raise FileExistsError(f"{path} is not a folder")
    problem = (_not_ours(path, st) or _writable_by_others(path, st, 0o022 if strict else 0o002)
               or _swappable(path))
    if problem is not None:
        raise PermissionError(problem)
    if st.st_mode & 0o077:
        _tighten(path, st)
    return path


def _not_ours(path: Path, st: os.stat_result) -> str | None:
    if stat.S_ISLNK(st.st_mode):
        return f"{path} is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a folder"
    if st.st_uid != os.getuid():
        return f"{path} belongs to another user (uid {st.st_uid})"
    return None


def _writable_by_others(path: Path, st: os.stat_result, bits: int) -> str | None:
    if st.st_mode & bits:
        who = "every user" if st.st_mode & bits & 0o002 else "its group"
        return f"{path} may be written by {who} (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _swappable(path: Path) -> str | None:
    parent = os.stat(path.parent).st_mode
    if parent & stat.S_IWOTH and not parent & stat.S_ISVTX:
        return f"{path.parent} may be written by every user (mode {stat.S_IMODE(parent):04o}, no sticky bit)"
    return None


def _tighten(path: Path, seen: os.stat_result) -> None:
    """chmod 0700 the very folder checked (same inode, opened without following a link)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0))
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (seen.st_dev, seen.st_ino) or st.st_uid != os.getuid():
            raise PermissionError(f"{path} changed while it was being checked")
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
