"""Sync ahead: the log's I/O thread starts an ``fdatasync`` the moment it is woken.

Pure-Python twin (the spec) of ``iosync_c``. The I/O thread of
`raftx.storage.io_thread.IOThread` sleeps on a doorbell (an eventfd). In pure
Python, once woken it needs the GIL before it can call ``fdatasync``, and it gets
it only when the event loop thread next blocks: on a busy node that is 100-300 us
after the append that rang (measured by ``raftx bench --critical-path``), time the
write waits for its fsync. The compiled twin waits on the doorbell and calls
``fdatasync`` with the GIL released throughout, so the sync starts at once.

The loop thread *arms* the object after each append's ``pwrite`` with the append's
number and file (`SyncAhead.arm`); `SyncAhead.wait` blocks until the doorbell
rings, then, if an append newer than the last one synced ahead is armed, syncs
its file. It returns what it covered: every append numbered ``<= seq`` that wrote
to ``fd`` is durable, because its ``pwrite`` returned before it was armed, and the
sync started after the armed value was read. ``arm`` stores the file before the
number, so a reader that sees a number also sees its file or a later one; an
append whose file differs from the returned ``fd`` is simply not covered and is
synced by the I/O thread's round as before.
"""

from __future__ import annotations

import errno
import os
import time

__all__ = ["SyncAhead"]


class SyncAhead:
    """The armed (append number, file) and what was synced ahead (see the module docstring)."""

    __slots__ = ("fd", "seq", "done")

    def __init__(self) -> None:
        #: The file of the newest armed append (-1: none yet).
        self.fd = -1
        #: The number of the newest armed append.
        self.seq = 0
        #: The newest append number known durable (synced ahead, or `synced`).
        self.done = 0

    def arm(self, seq: int, fd: int) -> None:
        """Append number ``seq`` wrote to ``fd`` (loop thread, after its ``pwrite``)."""
        self.fd = fd
        self.seq = seq

    def synced(self, seq: int) -> None:
        """Every append numbered ``<= seq`` is durable (an I/O round synced them; I/O
        thread): `wait` does not sync them ahead again."""
        if seq > self.done:
            self.done = seq

    def wait(self, bell: int) -> tuple[int, int, int, float]:
        """Block until ``bell`` (an eventfd or pipe) is rung and read it; then sync
        the armed file if an append newer than `done` is armed.

        Returns ``(fd, seq, errno, seconds)``: the appends numbered ``<= seq`` on
        ``fd`` are durable (``fd`` -1: nothing synced; ``errno`` non-zero: the sync
        failed, and nothing is covered); ``seconds`` that the ``fdatasync`` took.
        EBADF is no failure: the store closed the file meanwhile (nothing is covered).
        If the file number was reused for another file, that file is merely synced: an
        append to it is armed after its ``pwrite``, so with a number above the one read,
        and no queued append at or below that number names it.
        """
        os.read(bell, 8)
        seq = self.seq
        fd = self.fd
        if fd < 0 or seq <= self.done:
            return -1, 0, 0, 0.0
        start = time.perf_counter()
        try:
            os.fdatasync(fd)
        except OSError as exc:
            if exc.errno == errno.EBADF:  # the file was closed meanwhile (the store closes): nothing covered
                return -1, 0, 0, 0.0
            return fd, seq, exc.errno or errno.EIO, time.perf_counter() - start
        self.done = seq
        return fd, seq, 0, time.perf_counter() - start
