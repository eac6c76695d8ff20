"""`FileIO`: the file-system calls of the durable stores, in one seam.

`SegmentedLogStore` (and `raftx.storage.recovery`, `raftx.storage.dirlock`, the
snapshot files) performs every file operation through a `FileIO` object. This one
calls ``os`` directly: whole-buffer writes, fsyncs that reach the device
(``F_FULLFSYNC`` on macOS). Tests pass another one to the store instead:
`raftx.testing.FaultInjector` (real files, failures and crashes on request) or
`raftx.testing.SimFS` (an in-memory disk that loses power).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
from collections.abc import Iterator

__all__ = ["FileIO"]


def _full_sync(fd: int) -> None:
    """fsync that reaches the storage device: on macOS plain fsync only reaches the
    drive's cache, so use ``F_FULLFSYNC`` there."""
    if hasattr(fcntl, "F_FULLFSYNC"):
        fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
    else:
        os.fsync(fd)


# fdatasync where the OS has it (Linux); elsewhere the full sync above.
_data_sync = os.fdatasync if hasattr(os, "fdatasync") and not hasattr(fcntl, "F_FULLFSYNC") else _full_sync


class FileIO:
    """Direct file-system calls (``os``); whole-buffer writes."""

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        """``os.open``; returns the fd."""
        return os.open(path, flags, mode)

    def close(self, fd: int) -> None:
        """``os.close``."""
        os.close(fd)

    def pwrite(self, fd: int, data: bytes | memoryview, offset: int) -> None:
        """Write all of ``data`` at ``offset`` (looping over short writes)."""
        n = os.pwrite(fd, data, offset)
        if n == len(data):
            return
        if n <= 0:
            raise OSError(errno.EIO, "pwrite wrote nothing")
        view = memoryview(data)[n:]
        offset += n
        while view:
            n = os.pwrite(fd, view, offset)
            if n <= 0:
                raise OSError(errno.EIO, "pwrite wrote nothing")
            view = view[n:]
            offset += n

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        """Read up to ``size`` bytes at ``offset`` (short only at end of file)."""
        parts = []
        while size > 0:
            b = os.pread(fd, size, offset)
            if not b:
                break
            parts.append(b)
            size -= len(b)
            offset += len(b)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def fdatasync(self, fd: int) -> None:
        """``os.fdatasync`` (``F_FULLFSYNC`` on macOS): the file's data is durable on return."""
        _data_sync(fd)

    def fsync(self, fd: int) -> None:
        """``os.fsync`` (``F_FULLFSYNC`` on macOS): data and metadata are durable on return."""
        _full_sync(fd)

    def ftruncate(self, fd: int, size: int) -> None:
        """``os.ftruncate`` to ``size`` bytes (not durable until synced)."""
        os.ftruncate(fd, size)

    def rename(self, src: str, dst: str) -> None:
        """Atomically replace ``dst`` with ``src`` (``os.replace``; durable after `fsync_dir`)."""
        os.replace(src, dst)

    def unlink(self, path: str) -> None:
        """``os.unlink`` (durable after `fsync_dir`)."""
        os.unlink(path)

    def fsync_dir(self, path: str) -> None:
        """fsync a directory so created / renamed / deleted entries are durable (R7)."""
        fd = os.open(path, os.O_RDONLY)
        try:
            _full_sync(fd)
        finally:
            os.close(fd)

    def size(self, fd: int) -> int:
        """The file's current size in bytes (``os.fstat``)."""
        return os.fstat(fd).st_size

    @contextlib.contextmanager
    def mapped(self, fd: int, size: int) -> Iterator[memoryview]:
        """The first ``size`` bytes of the file as a read-only buffer for the block
        (``mmap``: no copy of a 64 MiB segment); ``size`` must be > 0."""
        with mmap.mmap(fd, size, prot=mmap.PROT_READ) as mm:
            view = memoryview(mm)
            try:
                yield view
            finally:
                view.release()

    def listdir(self, path: str) -> list[str]:
        """Names in directory ``path`` (``os.listdir``)."""
        return os.listdir(path)

    def makedirs(self, path: str) -> None:
        """Create directory ``path`` and its parents if missing."""
        os.makedirs(path, exist_ok=True)

    def lock(self, fd: int) -> None:
        """Take an exclusive ``flock`` on ``fd`` without waiting; `BlockingIOError` if
        another open file holds it. Released when ``fd`` is closed (or the process dies)."""
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    # -- the atomic write (R7), written once -----------------------------------------

    def replace(self, fd: int, tmp: str, path: str, *, sync: bool = True) -> None:
        """Finish an atomic write: fsync ``fd`` (temp file ``tmp``, complete), rename ``tmp``
        over ``path``, fsync the directory (R7). After a crash ``path`` holds its old
        content or all of the new, and once this returns the new content and its name
        are durable. ``sync=False`` skips both fsyncs (still atomic, not durable)."""
        if sync:
            self.fsync(fd)
        self.rename(tmp, path)
        if sync:
            self.fsync_dir(os.path.dirname(path) or ".")

    def create_atomic(self, path: str, data: bytes | memoryview, *, sync: bool = True) -> int:
        """Create or replace ``path`` with exactly ``data``: written to ``<path>.tmp``, then
        `replace`. Returns the new file's descriptor, open for reading and writing."""
        tmp = path + ".tmp"
        fd = self.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
        try:
            self.pwrite(fd, data, 0)
            self.replace(fd, tmp, path, sync=sync)
        except BaseException:
            self.close(fd)
            raise
        return fd

    def write_atomic(self, path: str, data: bytes | memoryview, *, sync: bool = True) -> None:
        """`create_atomic`, closing the file."""
        self.close(self.create_atomic(path, data, sync=sync))

    def read_file(self, path: str) -> bytes:
        """The whole content of ``path`` (through `open` / `size` / `pread`)."""
        fd = self.open(path, os.O_RDONLY)
        try:
            return self.pread(fd, self.size(fd), 0)
        finally:
            self.close(fd)
