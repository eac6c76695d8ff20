"""`IOThread`: a log store's one long-lived I/O thread (group commit + blocking jobs).

`raftx.storage.segmented.SegmentedLogStore` owns one, started by ``open`` and
stopped by ``close`` (or when the store is garbage-collected). Contract:

* **Submission order (R14).** Work is queued from the loop thread and processed
  strictly in that order: `IOThread.sync` (``fdatasync`` the file an append wrote
  to) and `IOThread.run` (any other blocking file operation: hard-state save,
  truncation, segment creation, purge, recovery). Every append queued before a job
  is made durable before the job runs, so no write overtakes another.
* **Group commit (R4).** Each *round* takes everything queued so far: one
  ``fdatasync`` per file touched by consecutive appends, then *one* report
  ``owner._synced(seq, error)`` covering every append up to ``seq``. Appends queued
  while an ``fdatasync`` runs go into the next round.
* **Sticky failure (R10).** After the first failed ``fdatasync`` or job nothing runs
  any more and nothing is retried: later rounds report the first error, later jobs
  fail with `raftx.errors.StorageError` chained to it.
* **Callbacks on the loop thread.** Round reports and job outcomes (the future
  `IOThread.run` returns) are posted back over a doorbell the event loop watches
  (``add_reader``) and run there, in the order the I/O thread produced them. A job
  itself runs on the I/O thread: the owner leaves what it changes alone until the
  job's future resolves.
* **Lifetime.** The thread holds only a weak reference to its owner; it finishes
  what is queued and exits on `IOThread.stop`, or when the owner is collected. It
  closes its doorbells itself on the way out (no fd is closed while it may use it).
* **Inline mode (deterministic simulation).** On a loop with a ``schedule_io``
  method (`raftx.testing.simulation.SimLoop`) no thread and no doorbell is made:
  each round runs as a loop callback that ``loop.schedule_io`` schedules (after a
  simulated I/O delay), with the same order, grouping and sticky failure, and its
  reports run as ordinary loop callbacks. Nothing else changes for the owner.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from raftx import _core
from raftx.errors import StorageError
from raftx.stats import Histogram
from raftx.storage.fileio import FileIO

__all__ = ["IOThread", "RoundOwner", "synced_ahead"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class RoundOwner(Protocol):
    """What an `IOThread` reports its rounds to (held weakly; called on the loop thread)."""

    def _synced(self, seq: int, error: BaseException | None) -> None:
        """Appends numbered ``<= seq`` are durable (R4), or ``error`` failed them (R10)."""


class _Doorbell:
    """A wake-up signal between two threads: an eventfd on Linux, else a pipe.

    A blocking doorbell is waited on by the I/O thread (the GIL is released while
    it sleeps); a non-blocking one is watched by the event loop (``add_reader``).
    Measured cheaper than `queue.SimpleQueue` + ``loop.call_soon_threadsafe``
    (benchmarks/bench_storage.py, software cost per append).
    """

    __slots__ = ("rfd", "wfd", "_eventfd")

    def __init__(self, blocking: bool) -> None:
        self._eventfd = hasattr(os, "eventfd")
        if self._eventfd:
            self.rfd = self.wfd = os.eventfd(0, os.EFD_CLOEXEC | (0 if blocking else os.EFD_NONBLOCK))
        else:  # pragma: no cover - non-Linux
            self.rfd, self.wfd = os.pipe()
            os.set_blocking(self.rfd, blocking)
            os.set_blocking(self.wfd, False)

    def ring(self) -> None:
        try:
            if self._eventfd:
                os.eventfd_write(self.wfd, 1)
            else:  # pragma: no cover - non-Linux
                os.write(self.wfd, b"\0")
        except BlockingIOError:  # pragma: no cover - a full pipe: the reader wakes anyway
            pass

    def wait(self) -> None:
        """Block until rung (blocking doorbell), or clear it (non-blocking one)."""
        try:
            if self._eventfd:
                os.eventfd_read(self.rfd)
            else:  # pragma: no cover - non-Linux
                os.read(self.rfd, 4096)
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self.rfd)
        if self.wfd != self.rfd:  # pragma: no cover - non-Linux
            os.close(self.wfd)


class _Job:
    """A blocking file operation for the I/O thread; its outcome resolves ``future``."""

    __slots__ = ("fn", "args", "future")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], future: asyncio.Future[Any]) -> None:
        self.fn = fn
        self.args = args
        self.future = future

    def run(self, iot: IOThread, failed: BaseException | None) -> None:
        """Run (unless an earlier write failed: R10) and post the outcome to the loop."""
        result: Any = None
        error: BaseException | None = None
        if failed is not None:
            error = StorageError(f"an earlier write of the log failed: {failed!r}")
            error.__cause__ = failed
        else:
            try:
                result = self.fn(*self.args)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                error = exc
        iot.post(_resolve, self.future, result, error)


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _run_posted(back: _Doorbell, done: deque[tuple[Callable[..., None], tuple[Any, ...]]]) -> None:
    """On the loop thread, when the I/O thread rang: run what it posted, in order."""
    back.wait()
    while done:
        fn, args = done.popleft()
        try:
            fn(*args)
        except Exception:  # pragma: no cover - _synced and _resolve do not raise
            logger.exception("I/O completion %r failed", fn)


class IOThread:
    """The owner's one I/O thread: fdatasync rounds (group commit) and blocking jobs.

    Items, processed strictly in order (R14): ``(seq, fd)`` = "the append numbered
    ``seq`` wrote to ``fd``", a `_Job`, or ``None`` (stop). See the module doc for
    the contract. Created on the loop thread of ``loop``, which must be running
    the owner; ``io`` performs the file-system calls; ``name`` names the thread.
    """

    def __init__(self, owner: RoundOwner, io: FileIO, loop: asyncio.AbstractEventLoop, name: str) -> None:
        self.loop = loop
        self.items: deque[Any] = deque()
        self.done: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()
        self._stopping = False
        #: Seconds per group-commit round's fdatasync calls, and their number
        #: (written by the I/O thread only, read by ``/metrics``; `raftx.stats`).
        self.fsync_seconds = Histogram()
        self.fsyncs = 0
        schedule_io = getattr(loop, "schedule_io", None)
        self._inline: _InlineRounds | None = None
        self.ahead: Any = None
        if callable(schedule_io):  # inline mode (module docstring): no thread
            self._inline = _InlineRounds(self, io, weakref.ref(owner), schedule_io)
            return
        #: Sync ahead (`raftx._core.iosync`): the thread's wait on the doorbell also
        #: starts the fdatasync of the newest append, without the GIL when compiled.
        #: Only over the plain `FileIO` (a fault-injecting one must see every call).
        self.ahead = _core.iosync.SyncAhead() if type(io) is FileIO else None
        self.bell = _Doorbell(blocking=True)  # loop -> I/O thread
        self.back = _Doorbell(blocking=False)  # I/O thread -> loop
        self._stop_lock = threading.Lock()
        loop.add_reader(self.back.rfd, _run_posted, self.back, self.done)
        self.thread = threading.Thread(target=_io_main, args=(self, io, weakref.ref(owner)), name=name, daemon=True)
        self.thread.start()
        weakref.finalize(owner, _abandoned, self)

    def put(self, item: Any) -> None:
        """Queue ``item`` (loop thread)."""
        self.items.append(item)
        if self._inline is not None:
            self._inline.wake()
        else:
            self.bell.ring()

    def sync(self, seq: int, fd: int) -> None:
        """Queue "append number ``seq`` wrote to ``fd``": it is reported durable by a later round."""
        if self.ahead is not None:
            self.ahead.arm(seq, fd)
        self.put((seq, fd))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on this thread, after everything queued before it (R14)."""
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.put(_Job(fn, args, fut))
        return await fut

    def post(self, fn: Callable[..., None], *args: Any) -> None:
        """Have the loop thread call ``fn(*args)`` (I/O thread)."""
        if self._inline is not None:
            self.loop.call_soon(fn, *args)
            return
        self.done.append((fn, args))
        self.back.ring()

    def stop(self) -> None:
        """On the loop thread (or once the loop is closed): finish what is queued, exit."""
        if self._inline is not None:
            if not self._stopping:
                self._stopping = True
                self.put(None)
            return
        with self._stop_lock:
            if self._stopping:
                return
            self._stopping = True
            self.loop.remove_reader(self.back.rfd)
            self.items.append(None)
            self.bell.ring()

    def _exit(self) -> None:
        with self._stop_lock:
            self.bell.close()
            self.back.close()


def _abandoned(iot: IOThread) -> None:
    """The owner was collected without `stop`: stop its thread from the loop thread."""
    try:
        iot.loop.call_soon_threadsafe(iot.stop)
    except RuntimeError:  # the loop is closed (its selector too): stop from here
        iot.stop()


_ahead_lock = threading.Lock()
_ahead_total = 0


def synced_ahead() -> int:
    """How many fdatasync calls every store's I/O thread in this process made ahead
    (`raftx._core.iosync`; they bypass `FileIO`, which counts the others)."""
    return _ahead_total


def _io_main(iot: IOThread, io: FileIO, owner_ref: weakref.ref[RoundOwner]) -> None:
    """The thread's body: take everything queued as one round, in order, until stopped."""
    failed: BaseException | None = None
    items, wait, ahead, bell = iot.items, iot.bell.wait, iot.ahead, iot.bell.rfd
    covered = (-1, 0)
    while True:
        while not items:
            if ahead is None:
                wait()
                continue
            fd, seq, err, took = ahead.wait(bell)
            if fd < 0:
                continue
            iot.fsyncs += 1
            iot.fsync_seconds.observe(took)
            global _ahead_total
            with _ahead_lock:
                _ahead_total += 1
            if err:  # R10: a failed fdatasync fails the store; the round reports it
                if failed is None:
                    failed = OSError(err, f"fdatasync: {os.strerror(err)}")
            elif failed is None:
                covered = (fd, seq)
        failed, stop = _round(iot, io, owner_ref, failed, covered)
        if stop:
            iot._exit()
            return


def _round(iot: IOThread, io: FileIO, owner_ref: weakref.ref[RoundOwner],
           failed: BaseException | None, covered: tuple[int, int] = (-1, 0)) -> tuple[BaseException | None, bool]:
    """One round: everything queued so far, in order; ``(failure so far, stopped)``.
    ``covered``: the appends numbered ``<= seq`` on file ``fd`` are durable already
    (synced ahead), so they need no fdatasync of their own."""
    items = iot.items
    fds: list[int] = []
    seq = 0
    report = False  # appends taken since the last report
    covered_fd, covered_seq = covered
    while items:
        item = items.popleft()
        if type(item) is tuple:
            seq, fd = item
            report = True
            if fd not in fds and (fd != covered_fd or seq > covered_seq):
                fds.append(fd)
        elif item is None:
            if report:
                failed = _sync_round(iot, io, fds, seq, owner_ref, failed)
            return failed, True
        else:
            if report:  # R14: the appends queued before this job are durable first
                failed = _sync_round(iot, io, fds, seq, owner_ref, failed)
                fds, report = [], False
            item.run(iot, failed)
    if report:
        failed = _sync_round(iot, io, fds, seq, owner_ref, failed)
    return failed, False


class _InlineRounds:
    """Inline mode (module docstring): rounds as loop callbacks, one scheduled at a time."""

    __slots__ = ("iot", "io", "owner_ref", "schedule", "scheduled", "failed", "stopped")

    def __init__(self, iot: IOThread, io: FileIO, owner_ref: weakref.ref[RoundOwner],
                 schedule: Callable[[Callable[[], None]], None]) -> None:
        self.iot = iot
        self.io = io
        self.owner_ref = owner_ref
        self.schedule = schedule
        self.scheduled = False
        self.failed: BaseException | None = None
        self.stopped = False

    def wake(self) -> None:
        if not self.scheduled and not self.stopped:
            self.scheduled = True
            self.schedule(self.run)

    def run(self) -> None:
        self.scheduled = False
        if self.stopped:
            return
        self.failed, self.stopped = _round(self.iot, self.io, self.owner_ref, self.failed)
        if self.iot.items and not self.stopped:
            self.wake()


def _sync_round(
    iot: IOThread, io: FileIO, fds: list[int], seq: int, owner_ref: weakref.ref[RoundOwner],
    failed: BaseException | None,
) -> BaseException | None:
    """fdatasync ``fds`` (never again after a failure, R10) and report up to ``seq``."""
    err = failed
    if err is None and fds:
        start = time.perf_counter()
        try:
            for fd in fds:
                io.fdatasync(fd)
                iot.fsyncs += 1
        except BaseException as exc:  # noqa: BLE001 - OSError (R10) or a simulated crash
            err = exc
        iot.fsync_seconds.observe(time.perf_counter() - start)  # one observation per round
        if err is None and iot.ahead is not None:
            iot.ahead.synced(seq)
    owner = owner_ref()
    if owner is not None:
        iot.post(owner._synced, seq, err)
    return err


