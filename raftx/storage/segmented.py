"""`SegmentedLogStore`: the default durable log — a directory of append-only segments.

Formats are in `raftx.storage.segment`. Behaviour (the rules are
R1–R20 of docs/guides/durability.md):

* **Group commit.** `append` writes the whole batch with one ``pwrite`` on the
  caller's thread (entries are readable on return) and queues the segment for
  ``fdatasync`` on the store's one long-lived I/O thread
  (`raftx.storage.io_thread.IOThread`), so the event
  loop keeps serving the network meanwhile. The I/O thread takes everything queued
  so far as one *round*: one fdatasync per segment touched, then one
  ``loop.call_soon_threadsafe`` that fires, in submission order, the callbacks of
  every append the round covered (R4). Appends submitted while an fdatasync runs
  are covered by the next round. ``sync_in_thread=False`` runs the fdatasync on the
  loop thread instead (lower latency per append, but the loop stalls during it).
* **Ordering (R14).** The I/O thread also runs the store's other blocking file
  operations (hard-state saves, truncation, segment creation, purge) strictly in
  submission order, and makes every append queued before such an operation durable
  first, so no write overtakes another. While one of those operations is in
  progress, later appends wait for it (`_exclusive`).
* **Hard state** (vote, committed, purge point) lives in one small file replaced
  atomically: temp file, fsync, rename, fsync directory (R5, R7) — after a crash it
  holds the old or the new value, never a mix.
* **Truncate** (R11) deletes whole later segments (newest first, then a directory
  fsync) and cuts the segment holding ``since`` with ``ftruncate`` + ``fdatasync``:
  every intermediate state is a prefix of the log, never a hole.
* **Purge** (R12) records the purge point durably first, then deletes whole
  segments wholly at or below it; an interrupted purge is finished on open.
* **Recovery** (R8, R9, R16, R17, R3): `raftx.storage.recovery.scan_log_dir`
  validates the directory (the same function ``raftx inspect --verify`` runs) and
  the `LogIndex` is rebuilt from the records; a torn write at the end of the *last*
  segment is cut and synced; anything else -- a bad record elsewhere, a sequence or
  index gap, a broken checksum chain, a header of another cluster or node, a lost
  hard state or first segment -- refuses to open with `raftx.errors.StorageCorrupted`
  / `StorageError` naming the file and offset.
* **One owner**: ``open`` takes an exclusive ``flock`` on ``LOCK`` in the directory
  (`raftx.storage.dirlock`); a second owner gets "data directory in use by pid N".
* **Arguments** are checked before any state changes (`TypeError` / `ValueError`).
* **Failures** (R10): an ``OSError`` from any write or fsync raises `StorageError`
  and leaves the store failed; fsync is never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from raftx import _core
from raftx.config import DEFAULT_CLUSTER_NAME
from raftx.errors import StorageCorrupted, StorageError
from raftx.stats import Histogram
from raftx.storage.base import LogStoreBase, check_callback, check_log_id, check_vote, fire
from raftx.records import EncodedBatch
from raftx.storage.fileio import FileIO
from raftx.storage.io_thread import IOThread
from raftx.storage.protocols import IOCallback
from raftx.storage.segment import HEADER_SIZE, HardState, cluster_bytes
from raftx.storage.segment_files import Segment, SegmentFiles
from raftx.types import Entry, LogId, Vote

__all__ = ["DEFAULT_SEGMENT_BYTES", "SegmentedLogStore"]

logger = logging.getLogger(__name__)

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
#: Bytes a purged segment is cut by per ``ftruncate`` before it is unlinked.
DELETE_CHUNK = 4 * 1024 * 1024
T = TypeVar("T")


def _retrieve(task: asyncio.Task[None]) -> None:
    """Mark a background task's outcome seen (a simulated crash ends it; nothing to report)."""
    if not task.cancelled():
        task.exception()


def _reraise(err: BaseException, exc: BaseException) -> NoReturn:
    """Raise what a write path's error handling chose (`SegmentedLogStore._guard`):
    ``exc`` itself, or ``err`` chained to it."""
    if err is exc:
        raise exc
    raise err from exc


class SegmentedLogStore(SegmentFiles, LogStoreBase):
    """A durable `RaftLogStorage` over a directory of segment files (see module doc).

    Create with ``await SegmentedLogStore.open(directory, ...)``. ``cluster_name`` and
    ``node_id`` are written into every header and checked on open (R3).
    ``fsync=False`` skips fdatasync (benchmarks only; logged as a warning, R20).
    ``io`` replaces the file-system calls (a `raftx.testing.FaultInjector` in tests).
    ``sync_in_thread`` (default) runs fdatasync on the store's I/O thread so the
    event loop keeps serving the network during it; False runs it on the loop thread
    (lower latency per append, see benchmarks/bench_storage.py, but the loop stalls).
    A store belongs to the event loop that opened it (its I/O thread reports there).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        fsync: bool = True,
        cluster_name: str = DEFAULT_CLUSTER_NAME,
        node_id: int = 0,
        io: FileIO | None = None,
        sync_in_thread: bool = True,
    ) -> None:
        if segment_bytes <= HEADER_SIZE:
            raise ValueError(f"segment_bytes must exceed the {HEADER_SIZE}-byte header, not {segment_bytes}")
        if not isinstance(node_id, int) or not 0 <= node_id < 2**64:
            raise ValueError(f"node_id must be a u64 int, not {node_id!r}")
        cluster_bytes(cluster_name)
        self._init_base()
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.cluster_name = cluster_name
        self.node_id = node_id
        self._io = io if io is not None else FileIO()
        self.sync_in_thread = sync_in_thread
        self._segments: list[Segment] = []
        self._index = _core.logindex.LogIndex()
        self._hard = HardState(cluster_name, node_id)
        self._next_seq = 1
        self._chain_crc = 0  # prev_checksum for the next segment when none is open
        self._lock = asyncio.Lock()
        self._busy = 0  # coroutines holding or waiting for _lock (see _exclusive)
        self._iot: IOThread | None = None
        self._lock_fd: int | None = None  # holds the directory's flock (one owner)
        #: Deleting the files of purged segments, in the background (`purge`).
        self._deleting: asyncio.Task[None] | None = None
        # group commit state
        self._written = 0  # sequence number of the last append written
        self._pending: deque[tuple[int, IOCallback | None]] = deque()  # not yet durable
        self._drain_waiters: list[asyncio.Future[None]] = []

    @classmethod
    async def open(cls, directory: str | os.PathLike[str], **options: Any) -> SegmentedLogStore:
        """Open (creating if needed) and recover the log in ``directory``.

        Raises `raftx.errors.StorageCorrupted` if recovery finds anything but a torn
        tail, `raftx.errors.StorageError` on I/O errors. ``options`` are the
        constructor's keyword arguments.
        """
        store = cls(directory, **options)
        if not store.fsync:
            logger.warning("SegmentedLogStore(%s) opened with fsync=False: NOT DURABLE (benchmarks only, R20)", directory)
        store._iot = IOThread(store, store._io, asyncio.get_running_loop(), f"raftx-log-io:{store.directory.name}")
        try:
            await store._run(store._recover)
        except BaseException:
            store._close_files()
            store._iot.stop()
            raise
        return store

    # -- helpers -------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking file operation on the I/O thread, after everything queued (R14)."""
        assert self._iot is not None, "use `await SegmentedLogStore.open(...)`"
        return await self._iot.run(fn, *args)

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        """Hold the store's lock; `append` takes its lock-free fast path only while
        nobody holds or waits for it, so submission order is kept (R14)."""
        self._busy += 1
        try:
            async with self._lock:
                yield
        finally:
            self._busy -= 1

    def _guard(self, exc: BaseException, what: str) -> BaseException:
        """Turn an exception from a write path into what to raise; mark the store failed."""
        if isinstance(exc, OSError | StorageError):
            return self._fail(exc, what)
        if self._failed is None:  # a simulated crash or cancellation mid-write: unusable now
            self._failed = StorageError(f"{what}: interrupted by {exc!r}")
        return exc

    # -- recovery -------------------------------------------------------------------------

    def _delete_purged_segments(self, upto: int) -> None:
        """Unlink, oldest first, every segment whose entries are all ``<= upto``."""
        self._unlink(self._detach_purged_segments(upto))

    def _unlink(self, paths: list[str]) -> None:
        """Delete purged segment files: each cut down `DELETE_CHUNK` bytes at a time
        first, since freeing a whole segment in one call holds the filesystem journal
        for tens of milliseconds, stalling every fdatasync on the disk meanwhile."""
        io = self._io
        for path in paths:
            try:  # a file already gone is fine: a deletion still running from before got to it
                fd = io.open(path, os.O_RDWR)
                try:
                    size = io.size(fd)
                    while size > DELETE_CHUNK:
                        size -= DELETE_CHUNK
                        io.ftruncate(fd, size)
                finally:
                    io.close(fd)
                io.unlink(path)
            except FileNotFoundError:
                continue
        if paths:
            io.fsync_dir(str(self.directory))

    # -- group commit ------------------------------------------------------------------------

    def _synced(self, seq: int, error: BaseException | None) -> None:
        """On the loop thread, once per I/O round: appends ``<= seq`` are durable (R4),
        or ``error`` failed the store (R10) and every pending callback gets it."""
        pending = self._pending
        if error is not None:
            err = self._guard(error, "fdatasync of the log failed")
            while pending:
                fire(pending.popleft()[1], err)
        else:
            while pending and pending[0][0] <= seq:
                fire(pending.popleft()[1], None)
        if not pending and self._drain_waiters:
            waiters, self._drain_waiters = self._drain_waiters, []
            for w in waiters:
                if not w.done():
                    w.set_result(None)

    async def _drain(self) -> None:
        """Wait until every append written so far is durable (or the store failed)."""
        while self._pending:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(fut)
            await fut
        self._check()

    # -- writes ---------------------------------------------------------------------------------

    async def append(self, entries: Sequence[Entry] | EncodedBatch, callback: IOCallback | None = None) -> None:
        """Append ``entries`` (§5.3: no hole, terms never decrease).

        Readable on return; ``callback`` fires once they are durable (group commit, R4).
        """
        if self.try_append(entries, callback):
            return
        async with self._exclusive():  # after any save, truncate, purge or rotation under way (R14)
            batch = self._prepare(entries, callback)
            seg = self._tail_for(batch)
            if seg is None and batch:
                seg = await self._make_room(batch, callback)
            self._write(seg, batch, callback)

    def try_append(self, entries: Sequence[Entry] | EncodedBatch, callback: IOCallback | None = None) -> bool:
        """`append` without a coroutine when it needs no await: True once written
        (readable now; ``callback`` fires when durable), False when `append` must be
        awaited instead (a save, truncate, purge or rotation under way, or a new
        segment to start). Bad ``entries`` raise as in `append` (callback told)."""
        check_callback(callback)
        if self._busy:
            return False
        batch = self._prepare(entries, callback)
        seg = self._tail_for(batch)
        if seg is None and batch:
            return False
        self._write(seg, batch, callback)
        return True

    def _prepare(self, entries: Sequence[Entry] | EncodedBatch, callback: IOCallback | None) -> EncodedBatch:
        """``entries`` as a batch that continues the log (§5.3), else tell ``callback`` and raise."""
        last = self._last
        if type(entries) is EncodedBatch and last is not None and self._failed is None and not self._closed:
            # the common case, checked inline (same rules as LogStoreBase._prepare_append)
            terms = entries.terms
            if terms and entries.first_index == last.index + 1 and terms[0] >= last.term:
                return entries
        try:
            return self._prepare_append(entries)
        except BaseException as exc:
            fire(callback, exc)
            raise

    def _tail_for(self, batch: EncodedBatch) -> Segment | None:
        """The tail segment if a non-empty ``batch`` goes there as it is, else None."""
        if not self._segments:
            return None
        seg = self._segments[-1]
        if seg.count:
            return seg if seg.size + len(batch.data) <= self.segment_bytes else None
        return seg if seg.first_index == batch.first_index else None

    async def _make_room(self, batch: EncodedBatch, callback: IOCallback | None) -> Segment:
        """Under the lock: start the segment ``batch`` goes to, on the I/O thread (R7)."""
        try:
            seg = self._segments[-1] if self._segments else None
            if seg is not None and not seg.count:  # an empty tail segment made for another index
                await self._run(self._truncate_sync, seg.first_index)
            return await self._run(self._create_segment, batch.first_index)
        except BaseException as exc:
            _reraise(self._write_failed(exc, callback), exc)

    def _write_failed(self, exc: BaseException, callback: IOCallback | None) -> BaseException:
        """Fail the store for ``exc`` (R10) and tell ``callback``; returns what to raise."""
        err = self._guard(exc, "append failed")
        if isinstance(err, StorageError):
            fire(callback, err)
        return err

    def _write(self, seg: Segment | None, batch: EncodedBatch, callback: IOCallback | None) -> None:
        """Write ``batch`` at the end of ``seg`` and queue its durability (group commit).

        The bytes are in the file (readable) on return; ``callback`` fires once they
        and everything submitted before them are durable (R4), in submission order.
        """
        pending = self._pending
        if seg is None:  # an empty batch: durable once everything before it is
            if pending:
                pending.append((self._written, callback))
            else:
                fire(callback, None)
            return
        data = batch.data
        base = seg.size
        try:
            self._io.pwrite(seg.fd, data, base)
        except BaseException as exc:
            _reraise(self._write_failed(exc, callback), exc)
        terms = batch.terms
        n = len(terms)
        seg.size = base + len(data)
        seg.count += n
        seg.last_crc = _core.codec.record_crc(data, batch.offsets[-1])
        self._index.extend(batch.first_index, terms, seg.seq, batch.offsets, batch.lengths, base_offset=base)
        self._last = LogId(terms[-1], batch.first_index + n - 1)
        self._written = seq = self._written + 1
        pending.append((seq, callback))
        if self.fsync and self.sync_in_thread:
            self._iot.sync(seq, seg.fd)  # type: ignore[union-attr]
            return
        if self.fsync:  # inline: fdatasync on the loop thread, which stalls meanwhile
            try:
                self._io.fdatasync(seg.fd)
            except BaseException as exc:
                err = self._guard(exc, "fdatasync of the log failed")
                self._synced(seq, err)
                _reraise(err, exc)
        self._synced(seq, None)

    async def _write_hard(self, **changes: Any) -> None:
        """Replace the hard-state file atomically with ``changes`` applied (R5, R7)."""
        import dataclasses

        new = dataclasses.replace(self._hard, **changes)
        try:
            await self._run(self._write_hard_sync, new.encode())
        except BaseException as exc:
            _reraise(self._guard(exc, "saving the hard state failed"), exc)
        self._hard = new

    async def save_vote(self, vote: Vote) -> None:
        """Persist ``vote``; durable on return, after every earlier append (R5, R14)."""
        check_vote(vote)
        async with self._exclusive():
            self._check()
            await self._write_hard(vote=vote)  # after the earlier appends are durable (R14)

    async def read_vote(self) -> Vote | None:
        """The last saved vote, or None."""
        self._check()
        return self._hard.vote

    async def save_committed(self, committed: LogId | None) -> None:
        """Persist the committed log id; durable on return, never ahead of the entries (R6, R14)."""
        check_log_id(committed, optional=True)
        async with self._exclusive():
            self._check()
            await self._write_hard(committed=committed)  # never durable ahead of the entries (R6, R14)

    async def read_committed(self) -> LogId | None:
        """The last saved committed log id, or None."""
        self._check()
        return self._hard.committed

    async def truncate(self, since: int) -> None:
        """Delete every entry ``>= since`` (§5.3); durable on return, always a prefix of the log (R11)."""
        async with self._exclusive():
            point = self._truncation_point(since)
            if point is None:
                return
            since = point
            try:
                await self._run(self._truncate_sync, since)
            except BaseException as exc:
                _reraise(self._guard(exc, "truncate failed"), exc)
            term = self._index.term_at(since - 1) if since - 1 >= self._index.first_index else None
            self._index.truncate_after(since - 1)
            self._after_truncate(since, term)

    async def purge(self, log_id: LogId) -> None:
        """Delete every entry ``<= log_id.index`` (§7); the purge point is durable first (R12)."""
        async with self._exclusive():
            if not self._check_purge(log_id):
                return
            await self._write_hard(purged=log_id)  # durable before any file goes (R12)
            try:
                paths = await self._run(self._detach_purged_segments, log_id.index)
            except BaseException as exc:
                _reraise(self._guard(exc, "purge failed"), exc)
            self._index.purge_upto(log_id.index)
            self._after_purge(log_id)
        # Deleting a full segment takes tens of milliseconds: in the background, so that
        # neither this store's appends nor a caller that awaits purge (the node's storage
        # worker) wait for it. The purge point is durable already; `open` deletes whatever
        # a crash leaves behind; `close` waits for it.
        if paths:
            task = asyncio.ensure_future(self._delete_files(paths, self._deleting))
            task.add_done_callback(_retrieve)
            self._deleting = task

    async def _delete_files(self, paths: list[str], before: asyncio.Task[None] | None) -> None:
        if before is not None:
            await asyncio.wait([before])  # one deletion at a time, oldest files first
        try:
            await asyncio.to_thread(self._unlink, paths)
        except OSError as exc:  # only space is lost: the next open deletes them
            logger.warning("could not delete purged segments %s: %s (retried at the next open)", paths, exc)

    async def close(self) -> None:
        """Make pending appends durable, close the files. Idempotent."""
        if self._closed:
            return
        if self._deleting is not None:
            await asyncio.wait([self._deleting])
        async with self._exclusive():
            if self._failed is None:
                try:
                    await self._drain()
                except StorageError:
                    pass
            self._closed = True
            self._close_files()
            if self._iot is not None:
                self._iot.stop()

    # -- reads ---------------------------------------------------------------------------------

    def _first_stored_index(self) -> int:
        return self._index.first_index

    async def _read_batch(self, lo: int, hi: int) -> EncodedBatch:
        parts = []
        segs = {s.seq: s for s in self._segments}
        for seq, first, last in self._index.segments():
            a, b = max(lo, first), min(hi - 1, last)
            if a > b:
                continue
            seg = segs[seq]
            _, start, _ = self._index.locate(a)
            _, end_off, end_len = self._index.locate(b)
            try:
                parts.append((seg, start, self._io.pread(seg.fd, end_off + end_len - start, start)))
            except OSError as exc:
                raise self._fail(exc, f"reading {seg.path}") from exc
        expected = lo
        batches = []
        for seg, start, data in parts:
            scan = _core.codec.scan_records(data, 0, expected)
            if scan.error is not None or scan.end != len(data):
                err = StorageCorrupted(f"bad record on read: {scan.error} (R9)", str(seg.path), start + scan.end)
                raise self._fail(err, "read")
            batches.append(EncodedBatch(data, expected, scan.terms, scan.offsets, scan.lengths))
            expected += scan.count
        return EncodedBatch.concat(batches)

    # -- introspection ----------------------------------------------------------------------------

    def segment_info(self) -> list[tuple[int, int, int, int, Path]]:
        """``(sequence, first_index, last_index, size_bytes, path)`` of each segment."""
        return [(s.seq, s.first_index, s.last_index, s.size, s.path) for s in self._segments]

    def fsync_stats(self) -> tuple[int, Histogram] | None:
        """The fdatasync calls made so far and the seconds per group-commit round
        (`raftx.stats.Histogram`); None before ``open`` (``/metrics`` reads it)."""
        iot = self._iot
        return None if iot is None else (iot.fsyncs, iot.fsync_seconds)

    @property
    def log_index(self) -> Any:
        """The in-memory `_core.logindex.LogIndex` (read it, do not change it)."""
        return self._index
