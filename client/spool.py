"""The spool's append/rotate protocol: many writers, one rotator, no lost or torn line.

Files in a spool directory (DESIGN §3)::

    events.jsonl                               the active file; writers append here
    events-20261128T010203456789-4242.jsonl    rotated files (UTC time of rotation, rotator pid):
                                               their names sort oldest first; never written again
    rotation.gen                               8 bytes: the rotation generation counter

Writers (`SpoolAppender.append`, used by the emitter, one per process)
---------------------------------------------------------------------
- The active file is opened ``O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC``, mode 0600, in a
  0700 directory, and the descriptor is kept open across events.
- Every event is ONE ``os.write()`` of one complete line, done while holding
  ``flock(LOCK_EX)`` on the descriptor. The lock serialises writers with each other
  (the kernel serialises appends to one inode anyway, so it costs no throughput) and,
  above all, with the rotator.
- Under the lock, before writing, the writer makes sure its descriptor still is the
  active file. Fast check: the generation counter (``rotation.gen``, mapped read-only
  into memory, so the check is a memory read, not a system call) equals the value the
  writer saw when it last verified its descriptor. Slow check (on open, when the counter
  moved, and at least once a second to notice files renamed or deleted by something that
  does not follow this protocol): ``stat(path)`` has the same inode as ``fstat(fd)``.
  If not, the writer unlocks, closes, reopens the path (creating the new active file)
  and tries again.
- A short write (disk full ``ENOSPC``, file-size limit ``EFBIG``) would leave a torn
  line that glues itself to the next one. Because the writer holds the exclusive lock,
  nobody appended after its fragment: it first tries to write the rest, and failing
  that truncates the file back to where its line started. If even that fails, the
  writer's next line starts with a newline, so the fragment stays a line of its own
  (readers skip and count undecodable lines). The failure is returned, never raised.
- The lock is acquired with ``LOCK_NB`` and a short backoff, giving up after
  `LOCK_TIMEOUT_S` (the event is then dropped and counted): a stopped process holding
  the lock can delay an ``emit()``, never hang it.
- Threads share one descriptor behind a ``threading.Lock`` (flock does not exclude
  threads sharing an open file description). After ``fork()`` the child drops the
  inherited descriptor (it shares the parent's lock state) and reopens on its next write.

Rotator (`rotate_spool`, run by the daemon or ``branchpy telemetry rotate``)
----------------------------------------------------------------------------
1. ``flock(LOCK_EX)`` on ``rotation.gen``: one rotation at a time.
2. Open the active file and ``flock(LOCK_EX)`` it: this waits for the write in flight.
   If the path now names another inode (someone rotated it meanwhile), start over.
   An empty or missing active file is not rotated (returns None).
3. Increment the generation counter, then ``rename()`` the file to a new, unused rotated
   name (bumping first means a failed rename costs writers one needless re-check, while a
   failed bump after a rename could not be taken back), then unlock.

Why no line can land in a rotated file after `rotate_spool` returns: a writer only
writes while holding the lock of its file, after having seen (under that same lock)
either the generation it verified the file with, or a fresh ``stat`` that names its
file. The increment and the rename happen while the rotator holds that lock, and the
counter only grows, so every writer that takes the lock afterwards sees a new generation,
stats the path, finds another inode (or none) and reopens. Nothing is lost: a line is
either in the file before the rename, or written to the new active file.

Readers (the exporter) and other tools
--------------------------------------
- A line is complete only once it ends in ``\n``: a reader of the active file may see
  part of a write in progress at its end. Stop at the last newline; the rest will be
  complete on the next read. Blank lines can occur (see short writes) and mean nothing.
- Never delete ``rotation.gen`` while writers may run (a purge removes event files only):
  writers that still map the old one would notice rotations only at their next
  once-a-second slow check.
- The guarantees need a local file system (``flock`` and ``O_APPEND`` are not atomic
  over NFS).

On platforms without ``fcntl`` (Windows) locking is skipped: a degraded mode, not a
guarantee (Windows cannot rename a file that is open without FILE_SHARE_DELETE, so
rotation there fails with a StorageError while writers hold the file).
"""

from __future__ import annotations

import errno
import mmap
import os
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import StorageError
from .paths import ensure_private_dir

try:
    import fcntl
except ImportError:  # Windows: degraded, lock-free mode (see module docstring)
    fcntl = None

ACTIVE_NAME = "events.jsonl"
GENERATION_NAME = "rotation.gen"
ROTATED_RE = re.compile(r"^events-(\d{8}T\d{12})-(\d+)(?:-(\d+))?\.jsonl$")
LOCK_TIMEOUT_S = 2.0  # a writer gives up (and counts a drop) after this
ROTATE_LOCK_TIMEOUT_S = 30.0
RECHECK_INTERVAL_S = 1.0
_monotonic = time.monotonic
if fcntl is not None:
    _flock, _LOCK_EX_NB, _LOCK_UN = fcntl.flock, fcntl.LOCK_EX | fcntl.LOCK_NB, fcntl.LOCK_UN
else:
    def _flock(fd: int, operation: int) -> None:
        return None
    _LOCK_EX_NB = _LOCK_UN = 0
_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


class SpoolWriteError(Exception):
    """A line could not be appended (the emitter counts it; never reaches callers of emit)."""


def lock_exclusive(fd: int, timeout: float = LOCK_TIMEOUT_S) -> bool:
    """`flock(LOCK_EX)` with a bounded wait. True once held; False on timeout."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        pass
    deadline = time.monotonic() + timeout
    pause = 0.00005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.002)


class _Generation:
    """Read-only memory view of `rotation.gen` (the writers' fast rotation check)."""

    def __init__(self, path: Path):
        self.path = path
        fd = _open_generation_file(path)
        try:
            self.ino = os.fstat(fd).st_ino
            self._map = mmap.mmap(fd, 8, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        self._bytes = memoryview(self._map)
        self.view = self._bytes.cast("Q")

    def still_current(self) -> bool:
        try:
            return os.stat(self.path).st_ino == self.ino
        except OSError:
            return False

    def close(self) -> None:
        self.view.release()
        self._bytes.release()
        self._map.close()


def _open_generation_file(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        if os.fstat(fd).st_size < 8:
            os.ftruncate(fd, 8)  # zero-filled; never shrinks a written counter
    except BaseException:
        os.close(fd)
        raise
    return fd


class SpoolAppender:
    """Appends complete lines to one spool's active file, following the protocol above."""

    def __init__(self, spool_dir: Path, *, recheck_interval_s: float = RECHECK_INTERVAL_S,
                 lock_timeout_s: float = LOCK_TIMEOUT_S):
        self.spool_dir = Path(spool_dir)
        self.recheck_interval_s = recheck_interval_s
        self.lock_timeout_s = lock_timeout_s
        self.path = self.spool_dir / ACTIVE_NAME
        self._mutex = threading.Lock()
        self._fd = -1
        self._ino = self._dev = -1
        self._gen: _Generation | None = None
        self._seen_gen = -1
        self._recheck_at = 0.0
        self._dir_ready = False
        self._needs_newline = False

    def append(self, line: bytes, tally: Any = None) -> None:
        """Write one complete line (ending in b"\\n") with one write(). Raises SpoolWriteError.

        `tally.emitted` (the emitter's counters), if given, is incremented under the
        writer's lock once the line is written: threads cannot lose a count.
        """
        with self._mutex:
            if self._needs_newline:
                line = b"\n" + line
            for _ in range(8):
                fd = self._fd
                if fd < 0:
                    fd = self._open()
                try:
                    _flock(fd, _LOCK_EX_NB)
                except BlockingIOError:
                    if not lock_exclusive(fd, self.lock_timeout_s):
                        raise SpoolWriteError("timed out waiting for the spool lock") from None
                try:
                    gen = self._gen
                    if ((gen is None or gen.view[0] != self._seen_gen or _monotonic() >= self._recheck_at)
                            and not self._verify_locked()):
                        continue  # rotated or removed: reopen (the finally unlocks and closes)
                    written = os.write(fd, line)
                    if written != len(line):
                        self._complete_or_undo(fd, line, written)
                    self._needs_newline = False
                    if tally is not None:
                        tally.emitted += 1
                    return
                except OSError as exc:
                    raise SpoolWriteError(f"write failed: {exc.strerror or exc}") from exc
                finally:
                    _flock(fd, _LOCK_UN)
                    if self._fd != fd:
                        os.close(fd)
            raise SpoolWriteError("the active spool file keeps changing under the writer")

    def close(self) -> None:
        with self._mutex:
            self._drop_fd()
            if self._gen is not None:
                self._gen.close()
                self._gen = None

    def after_fork_in_child(self) -> None:
        """The inherited descriptor shares the parent's lock: forget it, reopen on next write."""
        self._mutex = threading.Lock()
        self._drop_fd()

    # -- internals (called with self._mutex held) --

    def _open(self) -> int:
        try:
            return self._open_active()
        except OSError as exc:
            raise SpoolWriteError(f"cannot open {self.path}: {exc.strerror or exc}") from exc

    def _open_active(self) -> int:
        if not self._dir_ready:
            ensure_private_dir(self.spool_dir)
            self._dir_ready = True
        try:
            fd = os.open(self.path, _OPEN_FLAGS, 0o600)
        except FileNotFoundError:  # the spool folder was removed: recreate it
            ensure_private_dir(self.spool_dir)
            fd = os.open(self.path, _OPEN_FLAGS, 0o600)
        st = os.fstat(fd)
        if os.name == "posix" and st.st_mode & 0o077:
            os.fchmod(fd, 0o600)
        self._fd, self._ino, self._dev = fd, st.st_ino, st.st_dev
        if self._gen is None or not self._gen.still_current():
            self._open_generation()
        self._seen_gen = -1  # force the slow check under the lock
        return fd

    def _open_generation(self) -> None:
        if self._gen is not None:
            self._gen.close()
            self._gen = None
        try:
            self._gen = _Generation(self.spool_dir / GENERATION_NAME)
        except (OSError, ValueError):
            self._gen = None  # no fast check: stat on every write (still correct)

    def _verify_locked(self) -> bool:
        """Under the lock: is our descriptor the active file? If not, mark it for reopening."""
        seen = self._gen.view[0] if self._gen is not None else -1
        try:
            st = os.stat(self.path)
            current = st.st_ino == self._ino and st.st_dev == self._dev
        except FileNotFoundError:
            current = False
        if not current:
            self._fd = -1  # caller unlocks and closes the old descriptor
            return False
        if self._gen is not None and not self._gen.still_current():
            self._open_generation()
            seen = self._gen.view[0] if self._gen is not None else -1
        self._seen_gen = seen
        self._recheck_at = time.monotonic() + self.recheck_interval_s
        return True

    def _complete_or_undo(self, fd: int, line: bytes, written: int) -> None:
        """After a short write: finish the line, or cut the fragment off. Raises SpoolWriteError.

        We hold the exclusive lock, so our fragment is the tail of the file.
        """
        rest = line[written:]
        try:
            while rest:
                n = os.write(fd, rest)
                if n <= 0:
                    raise OSError(errno.EIO, "no progress")
                rest = rest[n:]
            return
        except OSError as exc:
            reason = exc.strerror or str(exc)
        end = os.lseek(fd, 0, os.SEEK_CUR)  # O_APPEND: just after our fragment
        try:
            if os.fstat(fd).st_size != end:
                raise OSError(errno.EAGAIN, "the file grew behind the fragment")
            os.ftruncate(fd, end - (len(line) - len(rest)))
        except OSError:
            self._needs_newline = True  # our next line starts on a line of its own
        raise SpoolWriteError(f"short write ({reason})")

    def _drop_fd(self) -> None:
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1


def rotate_spool(spool_dir: Path, now: datetime | None = None, *,
                 lock_timeout_s: float = ROTATE_LOCK_TIMEOUT_S) -> Path | None:
    """Rename the active file to a new rotated name; None if it is missing or empty.

    Waits (at most `lock_timeout_s`) for the write in flight; once it returns, no writer
    writes into the returned file again. `now` (aware UTC datetime) names the file.
    Raises StorageError if the spool cannot be rotated (nothing is renamed then).
    """
    spool_dir = Path(spool_dir)
    active = spool_dir / ACTIVE_NAME
    try:
        gen_fd = _open_generation_file(spool_dir / GENERATION_NAME)
    except FileNotFoundError:
        return None  # no spool folder, nothing to rotate
    except OSError as exc:
        raise StorageError(f"cannot open {spool_dir / GENERATION_NAME}: {exc.strerror}") from exc
    try:
        if not lock_exclusive(gen_fd, lock_timeout_s):
            raise StorageError(f"another rotation of {spool_dir} did not finish in {lock_timeout_s:g}s")
        for _ in range(100):
            try:
                fd = os.open(active, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except FileNotFoundError:
                return None
            try:
                if not lock_exclusive(fd, lock_timeout_s):
                    raise StorageError(f"{active} stayed locked for {lock_timeout_s:g}s",
                                       hint="a writer process may be stopped (SIGSTOP) mid-write")
                st = os.fstat(fd)
                try:
                    cur = os.stat(active)
                except FileNotFoundError:
                    return None
                if (cur.st_ino, cur.st_dev) != (st.st_ino, st.st_dev):
                    continue  # replaced meanwhile (not by a rotator: we hold their lock)
                if st.st_size == 0:
                    return None
                target = _unused_rotated_name(spool_dir, now)
                try:
                    # Bump first: if the rename then fails, writers only re-check for nothing.
                    _bump_generation(gen_fd)
                    os.rename(active, target)
                except OSError as exc:
                    raise StorageError(f"cannot rotate {active}: {exc.strerror or exc}") from exc
                return target
            finally:
                os.close(fd)  # closing releases the lock
        raise StorageError(f"{active} kept changing during rotation")
    finally:
        os.close(gen_fd)


def _bump_generation(gen_fd: int) -> None:
    """Add one to the counter (little-endian u64; rotators are serialised by its flock)."""
    os.lseek(gen_fd, 0, os.SEEK_SET)
    current = int.from_bytes(os.read(gen_fd, 8).ljust(8, b"\0"), "little")
    os.lseek(gen_fd, 0, os.SEEK_SET)
    os.write(gen_fd, ((current + 1) % (1 << 64)).to_bytes(8, "little"))


def _unused_rotated_name(spool_dir: Path, now: datetime | None) -> Path:
    when = (now or datetime.now(UTC)).astimezone(UTC)
    base = f"events-{when.strftime('%Y%m%dT%H%M%S%f')}-{os.getpid()}"
    candidate = spool_dir / f"{base}.jsonl"
    n = 1
    while candidate.exists():  # same pid, same microsecond (or a fixed `now`)
        candidate = spool_dir / f"{base}-{n}.jsonl"
        n += 1
    return candidate


def list_spool_files(spool_dir: Path) -> list[Path]:
    """Rotated files oldest first, then the active file (only files that exist)."""
    spool_dir = Path(spool_dir)
    try:
        names = os.listdir(spool_dir)
    except FileNotFoundError:
        return []
    rotated = []
    for name in names:
        match = ROTATED_RE.match(name)
        if match:
            rotated.append((match.group(1), int(match.group(2)), int(match.group(3) or 0), name))
    files = [spool_dir / item[3] for item in sorted(rotated)]
    if ACTIVE_NAME in names:
        files.append(spool_dir / ACTIVE_NAME)
    return files


def spool_size_bytes(spool_dir: Path) -> int:
    """Total bytes of the spool's event files (rotated + active)."""
    total = 0
    for path in list_spool_files(spool_dir):
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            pass  # rotated away or removed while we looked
    return total
