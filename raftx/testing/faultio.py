"""`FaultInjector`: a `FileIO` over real files that fails, tears or crashes on request.

`SegmentedLogStore` performs every file operation through a `raftx.storage.FileIO`.
`FaultInjector` is one that can, on request, fail an operation with an `OSError`
(EIO by default: the fsyncgate case, R10), tear a write after some bytes, or
"crash" the process at the n-th mutating operation by raising `SimulatedCrash` --
after which every operation through it raises too, as if the process were gone,
until `revive` (the restart).

This is not a mock of the store: the store runs its real code over real files; the
injector only decides where the machine stops. `FaultGate` holds the arming and
numbering, shared with `raftx.testing.simfs.SimFS` (an in-memory disk that also
models power loss).
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Iterator

from raftx.storage.fileio import FileIO

__all__ = ["FaultGate", "FaultInjector", "SimulatedCrash"]

logger = logging.getLogger(__name__)


class SimulatedCrash(BaseException):
    """Raised by `FaultInjector` where the simulated process dies.

    A `BaseException` (like `KeyboardInterrupt`) so the store's error handling
    (which turns `OSError` into `StorageError`) does not treat it as an I/O error.
    """


class FaultGate:
    """The arming and numbering shared by `FaultInjector` (real files) and
    `raftx.testing.simfs.SimFS` (an in-memory disk).

    Mutating operations (open-for-write, pwrite, fsync, fdatasync, ftruncate,
    rename, unlink, fsync_dir) are numbered from 0 in ``ops``; ``trace`` records
    ``(number, name, detail)`` for each. A subclass calls `_gate` before each such
    operation and implements `_close_all` (what the death of the process closes).
    """

    MUTATING = ("open", "pwrite", "fsync", "fdatasync", "ftruncate", "rename", "unlink", "fsync_dir")

    def _init_gate(self) -> None:
        self.ops = 0
        self.trace: list[tuple[int, str, str]] = []
        self.dead = False
        self._crash_at: int | None = None
        self._tear: int | None = None
        self._fail: dict[str, int] = {}
        self._gate_lock = threading.RLock()

    # -- arming ----------------------------------------------------------------------

    def crash_after(self, n: int) -> None:
        """Crash just before the n-th mutating operation from now (0 = the next one)."""
        self._crash_at = self.ops + n

    def tear_next_write(self, nbytes: int) -> None:
        """The next pwrite writes only its first ``nbytes`` bytes, then crashes."""
        self._tear = nbytes

    def fail_next(self, op: str, err: int = errno.EIO) -> None:
        """The next ``op`` (e.g. ``"fdatasync"``) raises ``OSError(err)`` without acting."""
        if op not in self.MUTATING:
            raise ValueError(f"unknown operation {op!r}")
        self._fail[op] = err

    def disarm(self) -> None:
        """Forget pending crashes, tears and failures."""
        self._crash_at = self._tear = None
        self._fail.clear()

    def kill(self) -> None:
        """The process dies now: close every descriptor it opened."""
        with self._gate_lock:
            self.dead = True
            self._close_all()

    def revive(self) -> None:
        """The restart after `kill`: operations work again, nothing armed."""
        self.kill()
        self.dead = False
        self.disarm()

    def _close_all(self) -> None:
        raise NotImplementedError

    # -- the gate ----------------------------------------------------------------------

    def _gate(self, name: str, detail: str = "") -> None:
        with self._gate_lock:
            if self.dead:
                raise SimulatedCrash(f"process is dead ({name} {detail})")
            n = self.ops
            if self._crash_at is not None and n >= self._crash_at:
                self._crash_at = None
                self.kill()
                logger.debug("simulated crash before op %d %s %s", n, name, detail)
                raise SimulatedCrash(f"crash before op {n}: {name} {detail}")
            self.ops += 1
            self.trace.append((n, name, detail))
            err = self._fail.pop(name, None)
            if err is not None:
                raise OSError(err, f"injected {os.strerror(err)} in {name}")

    def _take_tear(self) -> int | None:
        """The armed tear length for this pwrite (disarmed by taking it), or None."""
        k, self._tear = self._tear, None
        return k

    def _alive(self, what: str) -> None:
        if self.dead:
            raise SimulatedCrash(f"process is dead ({what})")

    def ops_since(self, start: int) -> Iterator[tuple[int, str, str]]:
        """The traced operations numbered ``>= start``."""
        return (t for t in self.trace if t[0] >= start)


class FaultInjector(FaultGate, FileIO):
    """A `FileIO` over real files that fails, tears or crashes on request (tests
    only; see module doc and `FaultGate`). Safe to use from the store's I/O thread
    and the event loop thread at once (the numbering is done under a lock).
    """

    def __init__(self) -> None:
        self._init_gate()
        self._fds: set[int] = set()

    def _close_all(self) -> None:
        for fd in list(self._fds):
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()

    # -- FileIO ----------------------------------------------------------------------

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        """Open; numbered (and may crash or fail) when it may create or write the file."""
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            self._gate("open", path)
        else:
            self._alive("open")
        fd = super().open(path, flags, mode)
        self._fds.add(fd)
        return fd

    def close(self, fd: int) -> None:
        """Close ``fd`` if this injector opened it and has not closed it yet (not numbered)."""
        if fd in self._fds:
            self._fds.discard(fd)
            super().close(fd)

    def pwrite(self, fd: int, data: bytes | memoryview, offset: int) -> None:
        """A mutating pwrite: numbered; an armed tear writes only a prefix, then crashes."""
        self._gate("pwrite", f"{len(data)}@{offset}")
        k = self._take_tear()
        if k is not None:
            super().pwrite(fd, memoryview(data)[:k], offset)
            self.kill()
            raise SimulatedCrash(f"torn write: {k} of {len(data)} bytes at {offset}")
        super().pwrite(fd, data, offset)

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        """Read (not numbered); `SimulatedCrash` once dead."""
        self._alive("pread")
        return super().pread(fd, size, offset)

    def fdatasync(self, fd: int) -> None:
        """A mutating `FileIO.fdatasync`: numbered; crashes or fails if so armed."""
        self._gate("fdatasync")
        super().fdatasync(fd)

    def fsync(self, fd: int) -> None:
        """A mutating `FileIO.fsync`: numbered; crashes or fails if so armed."""
        self._gate("fsync")
        super().fsync(fd)

    def ftruncate(self, fd: int, size: int) -> None:
        """A mutating `FileIO.ftruncate`: numbered; crashes or fails if so armed."""
        self._gate("ftruncate", str(size))
        super().ftruncate(fd, size)

    def rename(self, src: str, dst: str) -> None:
        """A mutating `FileIO.rename`: numbered; crashes or fails if so armed."""
        self._gate("rename", f"{src} -> {dst}")
        super().rename(src, dst)

    def unlink(self, path: str) -> None:
        """A mutating `FileIO.unlink`: numbered; crashes or fails if so armed."""
        self._gate("unlink", path)
        super().unlink(path)

    def fsync_dir(self, path: str) -> None:
        """A mutating `FileIO.fsync_dir`: numbered; crashes or fails if so armed."""
        self._gate("fsync_dir", path)
        super().fsync_dir(path)
