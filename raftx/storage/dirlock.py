"""One owner per data directory: an exclusive ``flock`` taken at open (R-lock).

Two processes appending to one log corrupt it (both become leader, both write the
same segment). `SegmentedLogStore` locks a ``LOCK`` file in its directory (and
records its pid there); `SqliteLogStore` locks the database file itself (sqlite's
own locks are POSIX record locks, independent of ``flock``). The lock lives as long
as the descriptor: released by ``close`` or by the death of the process, so a
crashed owner never leaves a stale lock behind.
"""

from __future__ import annotations

import logging
import os

from raftx.errors import StorageError
from raftx.storage.fileio import FileIO

__all__ = ["lock_path"]

logger = logging.getLogger(__name__)


def _pid_from_proc_locks(path: str) -> int | None:
    """The pid Linux reports (``/proc/locks``) for a ``flock`` on ``path``'s inode."""
    try:
        ino = os.stat(path).st_ino
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5].rsplit(":", 1)[-1] == str(ino):
                    return int(parts[4])
    except (OSError, ValueError):
        pass
    return None


def lock_path(io: FileIO, path: str, *, record_pid: bool) -> int:
    """Open ``path`` (created if missing) and take its exclusive lock; return the fd.

    ``record_pid`` writes this process's pid into the file (a ``LOCK`` file, never
    a database). Raises `raftx.errors.StorageError` ``"data directory in use by pid
    N"`` when another open file holds the lock.
    """
    try:
        fd = io.open(path, os.O_RDWR | os.O_CREAT)
    except OSError as exc:
        raise StorageError(f"cannot open the lock file {path}: {exc}") from exc
    try:
        io.lock(fd)
    except BlockingIOError:
        pid: int | str | None = None
        if record_pid:
            try:
                pid = int(io.pread(fd, 32, 0).split(b"\n", 1)[0])
            except (OSError, ValueError):
                pid = None
        if pid is None:
            pid = _pid_from_proc_locks(path)
        io.close(fd)
        raise StorageError(f"data directory in use by pid {pid if pid is not None else 'unknown'} ({path} is locked)") from None
    except OSError as exc:
        io.close(fd)
        raise StorageError(f"cannot lock {path}: {exc}") from exc
    if record_pid:
        try:
            io.ftruncate(fd, 0)
            io.pwrite(fd, b"%d\n" % os.getpid(), 0)
        except OSError as exc:
            io.close(fd)
            raise StorageError(f"cannot write {path}: {exc}") from exc
    return fd
