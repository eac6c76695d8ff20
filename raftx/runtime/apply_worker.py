"""The state-machine worker: applies committed entries off the core task's critical path.

One task owns every call into the `raftx.storage.RaftStateMachine` (the protocol
says it is called from one task at a time), in the order the core handed them:

* ``apply``: take the committed range from the node's `raftx.runtime.log_cache.LogCache`
  (the batches as the leader encoded or the follower received them: DESIGN §2
  rule 3), or else read it from the log store (once the storage worker has
  written it), call `RaftStateMachine.apply` once for the whole range —
  consecutive queued ranges are merged into one call — have the node's
  `raftx.runtime.pending.PendingCalls` answer the client responders with the
  state machine's outputs (responses resolve after apply), then report
  `raftx.engine.Applied` (§5.3: entries are applied in log order, exactly once);
* ``build``: build a snapshot (§7) and report `raftx.engine.SnapshotBuilt`;
* ``install``: install a snapshot received from the leader (§7), then release the
  storage worker waiting on it;
* ``call``: run an arbitrary coroutine function serialized with the above (used by
  `raftx.Raft.get_snapshot` and the snapshot sender).

A failure of the state machine or of the log read is fatal to the node.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, Awaitable, Callable

from raftx.engine.commands import Apply
from raftx.engine.events import Applied, Event, SnapshotBuilt
from raftx.errors import StorageError
from raftx.runtime.log_cache import LogCache
from raftx.runtime.pending import PendingCalls
from raftx.runtime.storage_worker import StorageWorker
from raftx.runtime.tasks import close_quietly, finish_task
from raftx.stats import Histogram
from raftx.storage.protocols import RaftLogStorage, RaftStateMachine
from raftx.types import EntryRange, LogId, SnapshotMeta

__all__ = ["ApplyWorker"]

logger = logging.getLogger(__name__)

#: At most this many entries per `RaftStateMachine.apply` call; longer committed
#: ranges are applied in chunks, the event loop turning between them.
APPLY_CHUNK = 1024


class ApplyWorker:
    """Serialized state-machine calls for one node (see the module docstring)."""

    def __init__(
        self,
        sm: RaftStateMachine,
        log_store: RaftLogStorage,
        storage: StorageWorker,
        post: Callable[[Event], None],
        on_fatal: Callable[[BaseException, str], None],
        on_applied: Callable[[LogId], None],
        pending: PendingCalls,
        cache: LogCache | None = None,
    ) -> None:
        self.sm = sm
        self.log_store = log_store
        self.storage = storage
        self._post = post
        self._on_fatal = on_fatal
        self._on_applied = on_applied
        self._queue: deque[tuple[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self._reader: Any = None
        self._cache = cache
        #: The node's registry of pending calls: answers the applied writes.
        self._pending = pending
        self.task: asyncio.Task[None] | None = None
        #: Seconds per ``sm.apply`` call (one observation per chunk; `raftx.stats`).
        self.apply_seconds = Histogram()

    def start(self) -> None:
        """Start the state-machine task (on the running loop)."""
        self.task = asyncio.get_running_loop().create_task(self._run(), name="raftx-apply")

    # -- feeding ---------------------------------------------------------------------

    def apply(self, cmd: Apply, written_io: int) -> None:
        """Queue `Apply` ``cmd``; its entries are readable once io ``written_io`` is written."""
        self._queue.append(("apply", (cmd, written_io)))
        self._wake.set()

    def build_snapshot(self) -> None:
        """Queue building a snapshot of the state machine after the applies queued so far (§7)."""
        self._queue.append(("build", None))
        self._wake.set()

    def install(self, meta: SnapshotMeta, data: Any, after_io: int) -> asyncio.Future[None]:
        """Queue installing ``data``; the returned future resolves when it is installed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(("install", (meta, data, after_io, done)))
        self._wake.set()
        return done

    async def call(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``fn()`` on this worker, after everything queued before it."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(("call", (fn, fut)))
        self._wake.set()
        return await fut

    # -- the worker ------------------------------------------------------------------

    async def _run(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            kind, arg = queue.popleft()
            try:
                if kind == "apply":
                    await self._apply(arg)
                elif kind == "build":
                    await self._build()
                elif kind == "install":
                    await self._install(*arg)
                else:
                    fn, fut = arg
                    try:
                        result = await fn()
                    except Exception as exc:  # the caller's problem, not the node's
                        if not fut.done():
                            fut.set_exception(exc)
                    else:
                        if not fut.done():
                            fut.set_result(result)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - state machine failures are fatal
                logger.error("state machine %s failed: %r", kind, exc)
                if kind == "install" and not arg[3].done():
                    arg[3].set_exception(exc)
                self._on_fatal(exc, f"state machine {kind} failed")
                return

    async def _apply(self, first_arg: tuple[Apply, int]) -> None:
        cmd, written_io = first_arg
        first, last = cmd.first_index, cmd.last
        runs = deque(cmd.responders)
        queue = self._queue
        settle = self._pending.settle_applied
        # Merge the consecutive apply commands queued behind this one: one apply call.
        while (queue and queue[0][0] == "apply" and queue[0][1][0].first_index == last.index + 1
               and last.index + 1 - first < APPLY_CHUNK):
            nxt, io = queue.popleft()[1]
            last = nxt.last
            written_io = max(written_io, io)
            runs.extend(nxt.responders)
        # A long range goes in chunks with a turn of the loop between them, so that a
        # node catching up keeps answering AppendEntries and heartbeats meanwhile.
        pos = first
        while pos <= last.index:
            stop = min(last.index + 1, pos + APPLY_CHUNK)
            entries = await self._entries(pos, stop, written_io, last if stop > last.index else None)
            started = time.perf_counter()
            outputs = await self.sm.apply(entries)
            self.apply_seconds.observe(time.perf_counter() - started)
            if len(outputs) != len(entries):
                raise StorageError(f"state machine returned {len(outputs)} responses for {len(entries)} entries")
            while runs and runs[0][0] < stop:
                index, rs = runs.popleft()
                if index + len(rs) > stop:  # the rest answers entries of the next chunk
                    runs.appendleft((stop, rs[stop - index:]))
                    rs = rs[:stop - index]
                settle(index, rs, entries, outputs)
            done = entries.log_id(len(entries) - 1)
            self._on_applied(done)
            self._post(Applied(done))
            pos = stop
            if pos <= last.index:
                await asyncio.sleep(0)

    async def _entries(self, start: int, stop: int, written_io: int, last: LogId | None) -> EntryRange:
        """Committed entries ``[start, stop)`` from the cache or the store; ``last`` (if
        given) must be the id of the last one."""
        entries = None if self._cache is None else self._cache.get_entries(start, stop)
        if entries is None or (last is not None and entries.log_id(len(entries) - 1) != last):
            await self.storage.wait_written(written_io)
            if self._reader is None:
                self._reader = await self.log_store.get_log_reader()
            read = await self._reader.try_get_log_entries(start, stop)
            if len(read) != stop - start or (read and read[0].log_id.index != start):
                raise StorageError(f"committed entries {start}..{stop - 1} are not all in the log "
                                   f"(read {len(read)}{'' if not read else f' from {read[0].log_id}'})")
            try:
                entries = EntryRange.of(read)
            except ValueError:
                raise StorageError(f"the log store returned entries {start}..{stop - 1} out of order") from None
        if last is not None and entries.log_id(len(entries) - 1) != last:
            raise StorageError(f"committed entry {last} is not in the log "
                               f"(found {entries.log_id(len(entries) - 1)} at its index)")
        return entries

    async def _build(self) -> None:
        builder = await self.sm.get_snapshot_builder()
        snap = await builder.build_snapshot()
        close_quietly(snap.snapshot)
        logger.info("built snapshot %s up to %s", snap.meta.snapshot_id, snap.meta.last_log_id)
        self._post(SnapshotBuilt(snap.meta))

    async def _install(self, meta: SnapshotMeta, data: Any, after_io: int, done: asyncio.Future[None]) -> None:
        await self.storage.wait_written(after_io)
        try:
            data.seek(0)
            await self.sm.install_snapshot(meta, data)
        finally:
            close_quietly(data)
        logger.info("installed snapshot %s up to %s", meta.snapshot_id, meta.last_log_id)
        if meta.last_log_id is not None:
            self._on_applied(meta.last_log_id)
            self._post(Applied(meta.last_log_id))
        if not done.done():
            done.set_result(None)

    # -- stopping --------------------------------------------------------------------

    async def close(self, timeout: float) -> None:
        """Finish what is queued (bounded by ``timeout``), then stop."""
        self._stopping = True
        self._wake.set()
        await finish_task(self.task, timeout, "state machine worker")
        self._drop_queue()

    def abort(self) -> None:
        """Stop at once (fatal path): cancel the task and drop every queued item."""
        self._stopping = True
        if self.task is not None and not self.task.done() and self.task is not asyncio.current_task():
            self.task.cancel()
        self._drop_queue()

    def _drop_queue(self) -> None:
        while self._queue:
            kind, arg = self._queue.popleft()
            if kind == "install":
                close_quietly(arg[1])
                if not arg[3].done():
                    arg[3].cancel()
            elif kind == "call" and not arg[1].done():
                arg[1].cancel()

