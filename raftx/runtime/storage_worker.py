"""The storage worker: carries out the engine's log and vote writes, in order.

The core task never awaits storage. It hands each storage command (io id ``n``)
to this worker, which submits them to the `raftx.storage.RaftLogStorage` one at a
time in io-id order (R14: no write overtakes another) and reports durability
back to the engine as `raftx.engine.IOFlushed`:

* ``append``: `RaftLogStorage.append` with a callback (inline, without a task
  switch, when the worker is idle and the store has ``try_append``); the entries are *written*
  (readable, so replication may send them) when the call returns and *durable*
  when the callback fires (group commit: one write and one fsync per batch);
* ``vote`` / ``truncate``: durable when the call returns (§5.2 Figure 2
  "updated on stable storage before responding to RPCs");
* ``purge``: deferred and coalesced (the latest purge point wins), carried out at
  most once per ``commit_save_interval`` when the queue is idle, and always before
  the next vote / truncate / install / close. A purge that stays inside the log is
  only compaction (§7): the entries it drops are covered by a durable snapshot,
  keeping them a little longer is always safe, and later appends commute with it,
  while each purge is a durable hard-state write (two fsyncs and a rename) that
  every later append would wait behind. Such a purge's io id is reported flushed
  as soon as every earlier io is durable. A purge *past the log's last entry* is
  not compaction: it is what moves the log to continue at ``upto + 1`` (after a
  snapshot install whose last entry this log lacks, §7 "discards the entire log"),
  so the appends after it depend on it; it runs in io-id order like a truncate;
* ``install``: waits for the state-machine worker to install the snapshot (§7)
  so the log writes after it (the purge) stay ordered behind it.

The worker tracks the index of the last entry it handed the store (appends,
truncates and in-order purges move it) to tell the two kinds of purge apart.

``written_io`` is the io id of the last command submitted; readers of the log
(replication, apply) wait for it with `wait_written` before reading entries the
engine just appended. The committed log id is saved lazily (coalesced, at most
once per ``commit_save_interval`` seconds, and at `close`): it only speeds up
recovery (R6) and must not cost an fsync per batch. Durability is reported in io-id
order: ``IOFlushed(n)`` means every io ``<= n`` is durable.

Any exception from the store is fatal to the node (DESIGN §2 rule 7): the worker
stops and calls ``on_fatal``; an fsync is never retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Callable

from raftx.engine.events import Event, IOFlushed
from raftx.runtime.tasks import finish_task
from raftx.storage.batch import EncodedBatch
from raftx.storage.protocols import RaftLogStorage
from raftx.types import LogId

__all__ = ["StorageWorker"]

logger = logging.getLogger(__name__)


class StorageWorker:
    """Ordered storage writes for one node (see the module docstring)."""

    def __init__(
        self,
        store: RaftLogStorage,
        post: Callable[[Event], None],
        on_fatal: Callable[[BaseException, str], None],
        commit_save_interval: float = 0.5,
        last_index: int = -1,
    ) -> None:
        """``last_index``: the store's last log index at start (-1: empty or unknown; an
        underestimate only makes more purges run in order, never an error)."""
        self.store = store
        self._post = post
        self._on_fatal = on_fatal
        self._queue: deque[tuple[str, int, Any]] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self._failed = False
        #: io id of the last storage command submitted to the store (-1: none).
        self.written_io = -1
        self._written_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._commit_interval = commit_save_interval
        self._commit_pending: LogId | None = None
        self._commit_saved: LogId | None = None
        self._commit_saved_at = float("-inf")
        self._commit_timer: asyncio.TimerHandle | None = None
        #: The latest deferred purge point, and when a purge last ran (loop time).
        self._purge_pending: LogId | None = None
        self._purge_done_at = float("-inf")
        self._purge_timer: asyncio.TimerHandle | None = None
        #: Every io <= this is durable (as reported to the engine).
        self.durable_io = -1
        #: io ids of deferred purges, reported once every earlier io is durable.
        self._free: deque[int] = deque()
        #: Index of the last entry submitted to the store (see the module docstring).
        self._last_index = last_index
        self.task: asyncio.Task[None] | None = None
        #: True while the worker carries out a command (an inline append would overtake it).
        self._busy = False
        self._try_append: Callable[[Any, Any], bool] | None = getattr(store, "try_append", None)

    # -- feeding ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the storage task (on the running loop)."""
        self.task = asyncio.get_running_loop().create_task(self._run(), name="raftx-storage")

    def submit(self, kind: str, io_id: int, arg: Any) -> None:
        """Queue storage command ``io_id`` (``kind`` in append/vote/truncate/purge/install).

        An append that finds the worker idle goes to the store at once when the store
        can take it without awaiting (``try_append``, `SegmentedLogStore`): the same
        order (nothing is queued or under way before it), one task switch less on the
        path of every write (issue 15)."""
        if kind == "append" and not self._queue and not self._busy and self._try_append is not None \
                and not self._failed and not self._stopping:
            try:
                done = self._try_append(arg, self._append_callback(io_id))
            except BaseException as exc:  # noqa: BLE001 - every storage failure is fatal
                self._fail(exc, f"storage append (io {io_id}) failed")
                return
            if done:
                self._appended(io_id, arg)
                return
        self._queue.append((kind, io_id, arg))
        self._wake.set()

    def _appended(self, io_id: int, batch: Any) -> None:
        """Append io ``io_id`` is written (readable); durability comes by its callback."""
        if batch:
            self._last_index = batch.last_index if isinstance(batch, EncodedBatch) else batch[-1].log_id.index
        self._set_written(io_id)

    def save_committed(self, committed: LogId) -> None:
        """Remember ``committed`` to persist soon (coalesced; see module docstring)."""
        self._commit_pending = committed
        if self._commit_timer is None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, self._commit_saved_at + self._commit_interval - loop.time())
            self._commit_timer = loop.call_later(delay, self._commit_due)

    def _commit_due(self) -> None:
        self._commit_timer = None
        self._wake.set()

    def _purge_due(self) -> None:
        self._purge_timer = None
        self._wake.set()

    def _defer_purge(self, io_id: int, upto: LogId) -> None:
        """Take purge io ``io_id`` off the write path (see the module docstring)."""
        if self._purge_pending is None or upto.index > self._purge_pending.index:
            self._purge_pending = upto
        self._set_written(io_id)
        self._free.append(io_id)
        self._durable(self.durable_io)
        if self._purge_timer is None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, self._purge_done_at + self._commit_interval - loop.time())
            self._purge_timer = loop.call_later(delay, self._purge_due)

    def _durable(self, io_id: int) -> None:
        """Every io ``<= io_id`` is durable: report it (and deferred purges after it)."""
        n = self.durable_io
        if io_id > n:
            n = io_id
        free = self._free
        while free and free[0] <= n + 1:
            f = free.popleft()
            if f > n:
                n = f
        if n > self.durable_io:
            self.durable_io = n
            self._post(IOFlushed(n))

    async def _run_purge(self) -> bool:
        """Carry out the deferred purge now; False if it failed (the node stops)."""
        upto, self._purge_pending = self._purge_pending, None
        if self._purge_timer is not None:
            self._purge_timer.cancel()
            self._purge_timer = None
        if upto is None:
            return True
        if upto.index > self._last_index:
            self._last_index = upto.index
        try:
            await self.store.purge(upto)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - every storage failure is fatal
            self._fail(exc, f"storage purge up to {upto} failed")
            return False
        self._purge_done_at = asyncio.get_running_loop().time()
        return True

    async def wait_written(self, io_id: int) -> None:
        """Return once storage command ``io_id`` (and every earlier one) was submitted."""
        if self.written_io >= io_id:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._written_waiters.append((io_id, fut))
        await fut

    @property
    def idle(self) -> bool:
        """True when no storage command is queued."""
        return not self._queue

    # -- the worker ------------------------------------------------------------------

    async def _run(self) -> None:
        queue = self._queue
        while True:
            self._busy = True
            if not queue:
                if self._commit_pending is not None and (self._commit_timer is None or self._stopping):
                    if not await self._save_committed():
                        return
                    continue
                if self._purge_pending is not None and (self._purge_timer is None or self._stopping):
                    if not await self._run_purge():
                        return
                    continue
                if self._stopping:
                    return
                self._busy = False
                self._wake.clear()
                await self._wake.wait()
                continue
            kind, io_id, arg = queue.popleft()
            if kind == "purge":
                if arg.index <= self._last_index:
                    self._defer_purge(io_id, arg)
                    continue
                # past the log's end: the next append continues at arg.index + 1 (§7)
                if self._purge_pending is None or self._purge_pending.index < arg.index:
                    self._purge_pending = arg
                if not await self._run_purge():
                    return
                self._set_written(io_id)
                self._durable(io_id)
                continue
            if kind != "append" and self._purge_pending is not None and not await self._run_purge():
                return  # a deferred purge goes before any other write (R14 order)
            try:
                await self._do(kind, io_id, arg)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - every storage failure is fatal
                self._fail(exc, f"storage {kind} (io {io_id}) failed")
                return

    async def _do(self, kind: str, io_id: int, arg: Any) -> None:
        store = self.store
        if kind == "append":
            await store.append(arg, self._append_callback(io_id))
            self._appended(io_id, arg)
            return
        if kind == "vote":
            await store.save_vote(arg)
        elif kind == "truncate":
            self._last_index = -1 if arg is None else arg.index
            await store.truncate_after(arg)
        elif kind == "install":
            await arg  # the state-machine worker's install (a future)
        else:  # pragma: no cover - the core only submits the kinds above
            raise AssertionError(f"unknown storage command {kind!r}")
        self._set_written(io_id)
        self._durable(io_id)

    def _append_callback(self, io_id: int) -> Callable[[BaseException | None], None]:
        def done(error: BaseException | None) -> None:
            if error is not None:
                self._fail(error, f"log append (io {io_id}) failed to become durable")
            elif not self._failed:
                self._durable(io_id)

        return done

    async def _save_committed(self) -> bool:
        committed, self._commit_pending = self._commit_pending, None
        if committed is None or committed == self._commit_saved:
            return True
        try:
            await self.store.save_committed(committed)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001
            self._fail(exc, "saving the committed log id failed")
            return False
        self._commit_saved = committed
        self._commit_saved_at = asyncio.get_running_loop().time()
        return True

    def _set_written(self, io_id: int) -> None:
        if io_id > self.written_io:
            self.written_io = io_id
        if self._written_waiters:
            ready = [w for w in self._written_waiters if w[0] <= io_id]
            self._written_waiters = [w for w in self._written_waiters if w[0] > io_id]
            for _, fut in ready:
                if not fut.done():
                    fut.set_result(None)

    def _fail(self, exc: BaseException, what: str) -> None:
        if self._failed:
            return
        self._failed = True
        logger.error("%s: %r", what, exc)
        self._on_fatal(exc, what)

    # -- stopping --------------------------------------------------------------------

    async def close(self, timeout: float) -> None:
        """Finish the queued writes (and the pending committed id and purge), then stop."""
        self._stopping = True
        for timer in (self._commit_timer, self._purge_timer):
            if timer is not None:
                timer.cancel()
        self._commit_timer = self._purge_timer = None
        self._wake.set()
        await finish_task(self.task, timeout, "storage worker")
        for _, fut in self._written_waiters:
            if not fut.done():
                fut.cancel()
        self._written_waiters.clear()

    def abort(self) -> None:
        """Stop at once (after a fatal error)."""
        self._stopping = True
        self._failed = True
        for timer in (self._commit_timer, self._purge_timer):
            if timer is not None:
                timer.cancel()
        self._commit_timer = self._purge_timer = None
        if self.task is not None and not self.task.done() and self.task is not asyncio.current_task():
            self.task.cancel()
        for _, fut in self._written_waiters:
            if not fut.done():
                fut.cancel()
        self._written_waiters.clear()
