"""The spool's append/rotate protocol: many writers, one rotator, no lost or torn line.

Files in a spool directory::

    events.jsonl                               the active file; writers append here
    events-20261128T010203456789-4242.jsonl    rotated files (UTC time of rotation, rotator pid):
                                               their names sort oldest first; never written again
    rotation.gen                               8 bytes: the rotation generation counter

Writers (`spool_appender.SpoolAppender.append`, used by the emitter, one per process)
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
import time
from datetime import UTC, datetime
from pathlib import Path

from branchpy_telemetry.client.contracts.errors import StorageError

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
        _back_with_storage(fd, 8)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _back_with_storage(fd: int, length: int) -> None:
    """Allocate the file's first bytes now. ftruncate leaves a hole, and on tmpfs reading
    a hole through a mapping allocates a page: on a full disk that is SIGBUS, which ends
    the process; here it is ENOSPC, an OSError the writer counts."""
    if not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fd, 0, length)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise


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
