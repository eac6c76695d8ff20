"""`RaftCore`: the one asyncio task that owns a node's `raftx.engine.Engine`.

Everything that changes Raft state goes through this task (openraft ``RaftCore``)::

    API calls, peer RPCs, I/O completions, ticks --> inbox --> engine.step(event)
                                                               |
            storage worker <-- SaveVote/AppendToLog/... <------+  (in io-id order)
            replicators    <-- Replicate/SendSnapshot   <------+  (per target, pipelined)
            apply worker   <-- Apply/BuildSnapshot      <------+  (off the critical path)
            futures        <-- Respond                  <------+  (when its Condition holds)

Commands are carried out in the order the engine emitted them, with one rule: a
command with a ``when`` `raftx.engine.Condition` waits until the storage io it
names is durable / the index it names is applied; later commands do not wait
for it. This gives the documented order *persist -> send what waited for
persistence -> apply -> respond* (DESIGN §2 rule 2: a vote grant or an append
success leaves only after its fsync).

Batching (DESIGN §2 rule 4): client writes are queued and drained, on each turn
of the loop, into one `raftx.engine.ClientWrite` (up to ``api_batch_capacity``):
one log append and one fsync for the batch, one frame per follower, one apply
call. Time enters the engine only as `raftx.engine.Tick`, scheduled with
``loop.call_at`` at the engine's next deadline (heartbeat or election timeout,
never later than one heartbeat interval): an idle node wakes a few times per
second, it never polls.

The inbox holds engine events and two runtime items (`raftx.runtime.inbox`), each
handled by its type. Every responder comes from one registry of pending calls
(`raftx.runtime.pending.PendingCalls`), which also answers the engine's `Respond` and
the applied writes. The workers see the node through narrow contexts (the senders'
`raftx.runtime.replication.ReplicationContext`, callbacks for the storage and apply
workers), never through this class.

A storage or state-machine failure stops the node (`raftx.errors.Fatal`, rule 7):
pending and later calls raise it and the metrics' ``running_state`` carries it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from typing import Any, Callable, Sequence

from raftx.config import Config
from raftx.engine import Engine, RestoredState
from raftx.engine import commands as cmd
from raftx.engine import events as ev
from raftx.errors import Fatal
from raftx.messages import PayloadBatch
from raftx.metrics import RaftDataMetrics, RaftMetrics, RaftServerMetrics
from raftx.network.protocols import RaftNetworkFactory
from raftx.runtime.apply_worker import ApplyWorker
from raftx.runtime.core_metrics import data_metrics, raft_metrics, server_metrics
from raftx.runtime.entries import encode_for_store
from raftx.runtime.inbox import CoreCall, InboxItem, SnapshotArrival
from raftx.runtime.log_cache import LogCache
from raftx.runtime.pending import PendingCalls
from raftx.runtime.replication import PeerClients, ReplicationContext, Replicator, send_transfer_leader, send_vote
from raftx.runtime.restore import restore_state
from raftx.runtime.state import RaftState
from raftx.runtime.storage_worker import StorageWorker
from raftx.runtime.tasks import OrderedSet, close_quietly
from raftx.runtime.watch import WatchSender
from raftx.runtime.write_batch import ResponderChain, WriteBatch
from raftx.stats import NodeStats
from raftx.storage.batch import EncodedBatch
from raftx.storage.protocols import RaftLogStorage, RaftStateMachine
from raftx.types import BasicNode

__all__ = ["RaftCore", "restore_state"]

logger = logging.getLogger(__name__)

#: Events handled per loop turn before client writes and metrics get their turn.
_BUDGET = 1024


class RaftCore:
    """The core task of one node and the workers it feeds (see the module docstring).

    Build it with `RaftCore.open`, which restores the durable state and starts the
    tasks. `raftx.Raft` is the public handle; this class is internal.
    """

    def __init__(
        self,
        node_id: int,
        config: Config,
        network: RaftNetworkFactory,
        log_store: RaftLogStorage,
        sm: RaftStateMachine,
        restored: RestoredState,
        rng: random.Random | None = None,
    ) -> None:
        self.id = node_id
        self.config = config
        self.network = network
        self.log_store = log_store
        self.sm = sm
        self._loop = asyncio.get_running_loop()
        self.engine = Engine(node_id, config, rng or random.Random(), restored)
        self.state_view = RaftState(self.engine)
        hb = config.heartbeat_interval
        #: Per-RPC deadlines in seconds (openraft: RPCOption hard TTL).
        self.append_timeout = max(config.election_timeout_max, 2 * hb) / 1000.0
        self.vote_timeout = config.election_timeout_min / 1000.0
        self.snapshot_timeout = max(config.install_snapshot_timeout, config.election_timeout_max) / 1000.0
        self.snapshot_install_wait = max(config.install_snapshot_wait / 1000.0, self.snapshot_timeout)
        self._inbox: deque[InboxItem] = deque()
        #: Queued client writes: ``(payload, future)`` per `submit_write`, one
        #: `WriteBatch` per `submit_write_many`.
        self._writes: deque[Any] = deque()
        self._wake = asyncio.Event()
        self.flushed_io = -1
        self.applied_index = -1 if restored.applied is None else restored.applied.index
        #: The io id of the last storage command handed to the storage worker.
        self.dispatched_io = -1
        #: Commands waiting for their `Condition`.
        self._pending: list[Any] = []
        #: An encoded append whose store write waits for the end of the commands
        #: being run (`_append`): (io id, batch).
        self._unstored: tuple[int, Any] | None = None
        self._received: dict[Any, Any] = {}
        #: Every call this node owes an answer (failed by `_stop`).
        self.pending = PendingCalls(self._loop)
        #: The latest appended batches as encoded once (DESIGN §2 rule 3), for the
        #: replicators and the apply worker.
        self.log_cache = LogCache()
        self._tasks: OrderedSet[asyncio.Task[Any]] = OrderedSet()
        self.replicators: dict[int, Replicator] = {}
        self.clients = PeerClients(network, self.node_of)
        self.storage = StorageWorker(log_store, self.post, self._on_fatal,
                                     commit_save_interval=max(0.5, 10 * hb / 1000.0),
                                     last_index=restored.last_index)
        self.apply_worker = ApplyWorker(sm, log_store, self.storage, self.post, self._on_fatal,
                                        self._on_applied, self.pending, self.log_cache)
        self._replication = ReplicationContext(
            node_id=node_id, post=self.post, clients=self.clients, log_cache=self.log_cache,
            wait_written=self.storage.wait_written, get_log_reader=log_store.get_log_reader,
            current_snapshot=lambda: self.apply_worker.call(sm.get_current_snapshot),
            max_frame_bytes=config.max_frame_bytes, append_timeout=self.append_timeout,
            vote_timeout=self.vote_timeout, snapshot_timeout=self.snapshot_timeout,
            snapshot_install_wait=self.snapshot_install_wait)
        #: Counters behind ``/metrics`` (`raftx.stats`); the apply worker times its calls into it.
        self.stats = NodeStats(apply_seconds=self.apply_worker.apply_seconds)
        self._known_leader: int | None = None
        self._tick_handle: asyncio.TimerHandle | None = None
        self._tick_at = float("inf")
        self._task: asyncio.Task[None] | None = None
        self._stop_task: asyncio.Task[None] | None = None
        #: None while running; the `Fatal` that stopped the node afterwards.
        self.stopped: Fatal | None = None
        self.metrics_tx: WatchSender[RaftMetrics] = WatchSender(raft_metrics(self.engine, None))
        self.data_tx: WatchSender[RaftDataMetrics] = WatchSender(data_metrics(self.engine))
        self.server_tx: WatchSender[RaftServerMetrics] = WatchSender(self._server_metrics())
        self._running_metrics: Callable[[], RaftMetrics] = lambda: raft_metrics(self.engine, None)
        self._data_metrics: Callable[[], RaftDataMetrics] = lambda: data_metrics(self.engine)
        #: How the core task handles each kind of inbox item (anything else: an engine event).
        self._dispatch: dict[type, Callable[[Any], None]] = {
            CoreCall: self._call_fn,
            SnapshotArrival: self._on_arrival,
            ev.IOFlushed: self._on_progress,
            ev.Applied: self._on_progress,
            ev.GetReadLogId: self._on_read,
        }
        self._handlers: dict[type, Callable[[Any], None]] = {
            cmd.SaveVote: lambda c: self._store("vote", c.io_id, c.vote),
            cmd.AppendToLog: self._append,
            cmd.TruncateLog: self._truncate,
            cmd.PurgeLog: lambda c: self._store("purge", c.io_id, c.upto),
            cmd.InstallSnapshot: self._install_snapshot,
            cmd.SaveCommitted: lambda c: self.storage.save_committed(c.committed),
            cmd.SendVote: lambda c: self._track(send_vote(self._replication, c)),
            cmd.Replicate: lambda c: self._replicator(c.target).push(c, self.dispatched_io),
            cmd.SendSnapshot: lambda c: self._replicator(c.target).push(c, self.dispatched_io),
            cmd.SendTransferLeader: lambda c: self._track(send_transfer_leader(self._replication, c)),
            cmd.Apply: lambda c: self.apply_worker.apply(c, self.dispatched_io),
            cmd.BuildSnapshot: lambda c: self.apply_worker.build_snapshot(),
            cmd.Respond: lambda c: self.pending.resolve(c.responder, c.value),
        }

    # -- construction ------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        node_id: int,
        config: Config,
        network: RaftNetworkFactory,
        log_store: RaftLogStorage,
        sm: RaftStateMachine,
        rng: random.Random | None = None,
    ) -> RaftCore:
        """Restore the node's state from its stores and start its tasks.

        Raises `raftx.errors.ConfigError` for a bad ``config`` and `raftx.errors.Fatal`
        (cause kept) if the stores cannot be read.
        """
        config.validate()
        try:
            restored = await restore_state(log_store, sm)
        except Exception as exc:
            raise Fatal("cannot restore the node's state from its stores", exc) from exc
        core = cls(node_id, config, network, log_store, sm, restored, rng)
        core._start()
        return core

    def _start(self) -> None:
        bind = getattr(self.network, "bind_local", None)
        if callable(bind):
            bind(self.id, self.config)
        self.storage.start()
        self.apply_worker.start()
        self._run_commands(self.engine.startup(self.now_ms()))
        self._task = self._loop.create_task(self._run(), name=f"raftx-core-{self.id}")
        self._after_turn()

    # -- feeding the core ----------------------------------------------------------------

    def now_ms(self) -> int:
        """The loop clock in whole milliseconds (the ticks the engine is given).

        Rounded to the microsecond first: a timer set for ``due / 1000`` s must see
        ``due`` ms when it fires, and ``1.003 * 1000`` is ``1002.99...`` in floating
        point (the tick would find itself early, re-arm for the same instant and spin;
        seen on the simulation's exact clock, and with uvloop's millisecond clock).
        """
        return int(round(self._loop.time() * 1_000_000)) // 1000

    def post(self, item: InboxItem) -> None:
        """Queue an engine event (or a `CoreCall` / `SnapshotArrival`) for the core task."""
        self._inbox.append(item)
        self._wake.set()

    def check_running(self) -> None:
        """Raise the `Fatal` that stopped the node, if it stopped."""
        if self.stopped is not None:
            raise self.stopped
        if self._stop_task is not None:
            raise Fatal("the node is shutting down")

    def new_future(self) -> asyncio.Future[Any]:
        """A responder future that `stop` fails with `Fatal` if still pending."""
        self.check_running()
        return self.pending.call()

    def submit_write(self, payload: bytes | None) -> asyncio.Future[Any]:
        """Queue one client write; the future resolves after it is applied (§5.3)."""
        if self.stopped is not None or self._stop_task is not None:
            self.check_running()
        fut = self.pending.write()
        self._writes.append((payload, fut))
        if not self._wake.is_set():
            self._wake.set()
        return fut

    def submit_write_many(self, payloads: list[bytes | None]) -> asyncio.Future[list[Any]]:
        """Queue a batch of client writes as one item; the future resolves, once every
        write has an outcome, with the list of outcomes in order (a response after the
        write is applied, §5.3, or the exception it failed with)."""
        if self.stopped is not None or self._stop_task is not None:
            self.check_running()
        if not payloads:
            done: asyncio.Future[list[Any]] = self._loop.create_future()
            done.set_result([])
            return done
        batch = self.pending.batch(payloads)
        self._writes.append(batch)
        if not self._wake.is_set():
            self._wake.set()
        return batch.future

    async def request(self, make: Callable[[asyncio.Future[Any]], Any]) -> Any:
        """Post ``make(responder)`` and wait for the engine's answer (exceptions raised)."""
        fut = self.new_future()
        self.post(make(fut))
        return await fut

    async def run_in_core(self, fn: Callable[[RaftState], Any]) -> Any:
        """Run ``fn(state)`` inside the core task, between engine steps; return its result."""
        fut = self.new_future()
        self.post(CoreCall(fn, fut))
        return await fut

    def call_soon(self, fn: Callable[[RaftState], Any]) -> None:
        """Run ``fn(state)`` inside the core task, fire and forget."""
        self.post(CoreCall(fn, None))

    def deliver_snapshot(self, event: ev.SnapshotReceived, data: Any) -> None:
        """Hand the engine a completely received snapshot; ``data`` is installed if the
        engine accepts it (§7) and closed otherwise."""
        self.post(SnapshotArrival(event, data))

    def node_of(self, target: int) -> BasicNode | None:
        """The address of ``target`` from the effective membership."""
        return self.engine.membership.effective.membership.get_node(target)

    # -- the loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        inbox, writes = self._inbox, self._writes
        dispatch, step = self._dispatch, self._step
        try:
            while True:
                if not inbox and not writes:
                    self._wake.clear()
                    await self._wake.wait()
                n = 0
                while inbox and n < _BUDGET:
                    item = inbox.popleft()
                    n += 1
                    dispatch.get(type(item), step)(item)
                if writes:
                    self._drain_writes()
                self._after_turn()
                if n >= _BUDGET:
                    await asyncio.sleep(0)  # let the workers and sockets run
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - a bug in the engine or here: stop the node
            logger.exception("node %s: core task failed", self.id)
            self._on_fatal(exc, "the core task panicked")

    def _step(self, event: ev.Event) -> None:
        self._run_commands(self.engine.step(event))

    def _on_progress(self, event: ev.IOFlushed | ev.Applied) -> None:
        """Storage or the state machine moved on: run the commands that waited for it."""
        if type(event) is ev.IOFlushed and event.io_id > self.flushed_io:
            self.flushed_io = event.io_id
        self._run_commands(self.engine.step(event))
        self._release_pending()

    def _on_arrival(self, item: SnapshotArrival) -> None:
        meta = item.event.meta
        self._received[(meta.snapshot_id, meta.last_log_id)] = item.data
        try:
            self._run_commands(self.engine.step(item.event))
        finally:
            self._drop_unclaimed_snapshots()

    def _on_read(self, event: ev.GetReadLogId) -> None:
        if event.lease:
            # the lease is checked against the clock now, not when the read was posted
            event = ev.GetReadLogId(event.responder, True, self.now_ms())
        self._run_commands(self.engine.step(event))

    def _drain_writes(self) -> None:
        writes = self._writes
        cap = self.config.api_batch_capacity
        payloads: list[bytes | None] = []
        parts: list[Sequence[Any]] = []  # runs of batch slots and lists of single-write futures
        singles: list[Any] = []
        while writes and len(payloads) < cap:
            item = writes.popleft()
            if type(item) is WriteBatch:
                if item.future.done():
                    continue  # the caller gave up before the writes were proposed
                more, slots = item.take(cap - len(payloads))
                payloads.extend(more)
                if singles:
                    parts.append(singles)
                    singles = []
                parts.append(slots)
                if item.taken < len(item.payloads):
                    writes.appendleft(item)  # the rest goes in the next engine step
                continue
            p, fut = item
            if fut.done():
                self.pending.forget(fut)
                continue  # the caller gave up before the write was proposed
            payloads.append(p)
            singles.append(fut)
        if singles:
            parts.append(singles)
        if payloads:
            responders = parts[0] if len(parts) == 1 else ResponderChain(parts)
            self._run_commands(self.engine.step(ev.ClientWrite(payloads, responders)))

    def _call_fn(self, call: CoreCall) -> None:
        fut = call.future
        try:
            result = call.fn(self.state_view)
        except Exception as exc:  # the caller's function failed, not the node
            if fut is not None and not fut.done():
                fut.set_exception(exc)
            else:
                logger.exception("external request raised")
            return
        if fut is not None and not fut.done():
            fut.set_result(result)

    # -- carrying out commands -----------------------------------------------------------

    def _run_commands(self, cmds: list[cmd.Command]) -> None:
        handlers = self._handlers
        for c in cmds:
            when = getattr(c, "when", None)
            if when is not None and not when.holds(self.flushed_io, self.applied_index):
                self._pending.append(c)
                continue
            handlers[type(c)](c)
        if self._unstored is not None:
            self._store_unstored()

    def _release_pending(self) -> None:
        if not self._pending:
            return
        flushed, applied = self.flushed_io, self.applied_index
        ready = [c for c in self._pending if c.when.holds(flushed, applied)]
        if ready:
            self._pending = [c for c in self._pending if not c.when.holds(flushed, applied)]
            handlers = self._handlers
            for c in ready:
                handlers[type(c)](c)
            if self._unstored is not None:
                self._store_unstored()

    def _append(self, c: cmd.AppendToLog) -> None:
        """Encode the batch once; cache it for replication and apply; store it once the
        commands of this step have run.

        The leader's AppendEntries for the batch (later commands of the same step) read
        it from the cache and leave before the leader's own write and fsync start: the
        leader writes its log in parallel with replication (thesis §10.2.1), and the
        followers' round trip, the longer branch, starts sooner. `dispatched_io` counts
        it now: whoever waits for it to be written waits for the storage worker.
        """
        if self._unstored is not None:
            self._store_unstored()
        entries = c.entries
        batch = encode_for_store(entries)
        if isinstance(batch, EncodedBatch):
            self.log_cache.append(batch, entries.payloads if isinstance(entries, PayloadBatch) else None)
        elif batch:
            self.log_cache.truncate_after(batch[0].log_id.index - 1)  # not cached: keep the mirror exact
        self.dispatched_io = c.io_id
        self._unstored = (c.io_id, batch)

    def _store_unstored(self) -> None:
        io_id, batch = self._unstored  # type: ignore[misc]
        self._unstored = None
        self.storage.submit("append", io_id, batch)

    def _truncate(self, c: cmd.TruncateLog) -> None:
        self.log_cache.truncate_after(-1 if c.after is None else c.after.index)
        self._store("truncate", c.io_id, c.after)

    def _store(self, kind: str, io_id: int, arg: Any) -> None:
        if self._unstored is not None:  # storage commands reach the worker in io order
            self._store_unstored()
        self.dispatched_io = io_id
        self.storage.submit(kind, io_id, arg)

    def _install_snapshot(self, c: cmd.InstallSnapshot) -> None:
        data = self._received.pop((c.meta.snapshot_id, c.meta.last_log_id), None)
        if data is None:  # pragma: no cover - the engine installs only what it was given
            raise AssertionError(f"install of a snapshot that was not received: {c.meta}")
        self.log_cache.clear()
        done = self.apply_worker.install(c.meta, data, c.io_id - 1)
        self._store("install", c.io_id, done)

    def _drop_unclaimed_snapshots(self) -> None:
        """A received snapshot the engine did not install in its step is stale: drop it."""
        received, self._received = self._received, {}
        for data in received.values():
            close_quietly(data)

    def _replicator(self, target: int) -> Replicator:
        r = self.replicators.get(target)
        if r is None:
            r = self.replicators[target] = Replicator(self._replication, target)
        return r

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_applied(self, last: Any) -> None:
        if last.index > self.applied_index:
            self.applied_index = last.index

    # -- after each turn: timer and metrics -----------------------------------------------

    def _after_turn(self) -> None:
        eng = self.engine
        now = self.now_ms()
        hb = self.config.heartbeat_interval
        due = eng.next_heartbeat if eng.leader is not None else eng.election_deadline
        if due <= now:
            due = now + hb  # nothing the engine did not already see at its last tick
        due = min(due, now + hb)
        if self._tick_handle is None or due < self._tick_at:
            if self._tick_handle is not None:
                self._tick_handle.cancel()
            self._tick_at = due
            self._tick_handle = self._loop.call_at(due / 1000.0, self._on_tick)
        leader_id = eng.current_leader
        if leader_id != self._known_leader and leader_id is not None:  # one compare per turn
            self._known_leader = leader_id
            self.stats.leader_changes += 1
        # Built when a receiver waits or reads, not on every turn (watch.send_lazy).
        self.metrics_tx.send_lazy(self._running_metrics)
        self.data_tx.send_lazy(self._data_metrics)
        self.server_tx.send_lazy(self._server_metrics)

    def _on_tick(self) -> None:
        self._tick_handle = None
        self._tick_at = float("inf")
        self.post(ev.Tick(self.now_ms()))

    def _server_metrics(self) -> RaftServerMetrics:
        return server_metrics(self.engine, self.stopped is not None)

    # -- stopping -----------------------------------------------------------------------

    def _on_fatal(self, exc: BaseException, what: str) -> None:
        if self._stop_task is not None or self.stopped is not None:
            return
        fatal = exc if isinstance(exc, Fatal) else Fatal(what, exc)
        logger.error("node %s stops: %s", self.id, fatal)
        self._stop_task = self._loop.create_task(self._stop(fatal, graceful=False))

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the node: finish queued writes, fail pending calls with `Fatal`. Idempotent."""
        if self._stop_task is None and self.stopped is None:
            self._stop_task = self._loop.create_task(
                self._stop(Fatal("stopped"), graceful=True, timeout=timeout))
        if self._stop_task is not None:
            await asyncio.shield(self._stop_task)

    async def _stop(self, reason: Fatal, graceful: bool, timeout: float = 5.0) -> None:
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*(r.close() for r in self.replicators.values()), *tasks, return_exceptions=True)
        if graceful:
            await self.apply_worker.close(timeout)
            await self.storage.close(timeout)
        else:
            self.apply_worker.abort()
            self.storage.abort()
        self.stopped = reason
        self.pending.fail_all(reason)
        while self._writes:
            item = self._writes.popleft()
            if type(item) is WriteBatch:
                item.fail_rest(reason)
            elif not item[1].done():
                item[1].set_exception(reason)
        for item in self._inbox:
            if type(item) is CoreCall and item.future is not None and not item.future.done():
                item.future.set_exception(reason)
            elif type(item) is SnapshotArrival:
                close_quietly(item.data)
        self._inbox.clear()
        self._drop_unclaimed_snapshots()
        await self.clients.close()
        self.metrics_tx.send(raft_metrics(self.engine, reason))
        self.data_tx.send_if_changed(self._data_metrics())
        self.server_tx.send_if_changed(self._server_metrics())
        for tx in (self.metrics_tx, self.data_tx, self.server_tx):
            tx.close()
        logger.info("node %s stopped: %s", self.id, reason)
