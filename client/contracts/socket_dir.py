"""Is the socket folder this user's own? Checked before any connect, and before the daemon binds.

The control socket carries secrets (`config set telemetry.api_key`, the
ingest key `backend up` sends). A client that connected to a socket another
user planted would hand them over, and a daemon that started in (or chmod'ed)
a folder it does not own would be the attacker's to intercept. So:

- Clients connect only when the run folder is a real folder (not a symlink),
  owned by this user, that no other user may write to, in a parent no other
  user can swap it in, and the socket (or the tcp address file) in it is
  this user's too. Otherwise `InsecureSocketDirError` (code
  `insecure_socket_dir`, exit 3) says what is wrong and nothing is sent.
- The daemon creates the folder 0700, tightens one of its own that others
  may only read, and refuses everything else (exit 1, same code and hint).

Every check uses lstat (or an O_NOFOLLOW descriptor): a symlink is refused,
never followed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from branchpy_telemetry.client.contracts.errors import InsecureSocketDirError
from branchpy_telemetry.client.contracts.paths import (
    MAX_IPC_PATH_BYTES,
    TelemetryPaths,
    ensure_private_dir,
    private_dir_problem,
)

HINT = ("another local user may be trying to intercept your commands: nothing was sent. "
        "Remove that path (as its owner or root), or set XDG_RUNTIME_DIR to a private folder "
        "(yours, mode 0700)")


def check_run_dir(paths: TelemetryPaths) -> bool:
    """True when the run folder exists and is private; False when it does not exist."""
    if os.name != "posix":
        return paths.run_dir.is_dir()
    try:
        problem = private_dir_problem(paths.run_dir)
    except FileNotFoundError:
        return False
    if problem is not None:
        raise insecure(f"unsafe socket folder: {problem}")
    return True


def check_own_socket(path: Path) -> bool:
    """True when `path` is this user's socket; False when absent or left over (a file of ours).

    Raises InsecureSocketDirError for a symlink (never followed) or another user's entry.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if os.name != "posix":
        return True
    if stat.S_ISLNK(st.st_mode):
        raise insecure(f"unsafe socket folder: {path} is a symbolic link")
    if st.st_uid != os.getuid():
        raise insecure(f"unsafe socket folder: {path} belongs to another user (uid {st.st_uid})")
    return stat.S_ISSOCK(st.st_mode)


def read_private_file(path: Path) -> bytes | None:
    """The content of this user's regular file at `path` (no symlink followed); None if absent."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: a symlink
        raise insecure(f"unsafe socket folder: cannot open {path} safely ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if os.name == "posix" and (not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid()):
            raise insecure(f"unsafe socket folder: {path} is not a file of yours")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(64 * 1024)
    finally:
        os.close(fd)


def claim_run_dir(paths: TelemetryPaths) -> None:
    """The daemon's side: create the run folder or make sure it is ours; never chmod another's."""
    longest = paths.progress_socket
    if os.name == "posix" and len(os.fsencode(str(longest))) > MAX_IPC_PATH_BYTES:
        raise insecure(f"socket path {longest} is longer than {MAX_IPC_PATH_BYTES} bytes",
                       hint="set XDG_RUNTIME_DIR (or XDG_STATE_HOME) to a shorter private folder")
    try:
        ensure_private_dir(paths.run_dir, strict=True)
    except (FileExistsError, PermissionError) as exc:
        if exc.errno is not None:  # the system's refusal (e.g. EACCES on mkdir), not one of our checks
            raise
        raise insecure(f"unsafe socket folder: {exc}") from None


def insecure(message: str, hint: str = HINT) -> InsecureSocketDirError:
    return InsecureSocketDirError(message, hint=hint)
