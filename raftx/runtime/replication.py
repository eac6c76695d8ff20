"""Moving the engine's network commands onto the wire: one sender task per peer.

The engine decides *what* to send (`Replicate` names an index range, within its
bounded in-flight window, §5.3); this module moves the bytes:

* `Replicator` (one task per follower/learner): takes the target's `Replicate`
  commands in order and sends each AppendEntries without waiting for the previous
  answer (pipelining over the target's one connection). The entries are the
  batch the leader encoded once (DESIGN §2 rule 3), from the core's
  `raftx.runtime.log_cache.LogCache`: then the request leaves at once, in the core's
  turn, without waiting for the local write (the leader counts itself toward commit
  only once its own write is durable, §5.4.2); when the target's connection is up
  it is sent from the core's callback itself and its answer taken in one
  (`RpcRaftNetwork.append_entries_nowait`: no task, no hop per request). A range the cache no longer holds
  (a lagging follower) is read from the log store as encoded bytes
  (`RaftLogReader.try_get_log_bytes`) once the storage worker has written it.
  Answers come back to the engine as `AppendResponded` / `ReplicationFailed`.
  After `raftx.errors.Unreachable` the sender backs off (delays from
  `RaftNetwork.backoff`): entries and snapshots fail fast until the delay passed,
  heartbeats keep probing and the first answer ends the backoff.
  `SendSnapshot` streams the state machine's current snapshot (§7).
* `send_vote` / `send_transfer_leader`: one task per RPC (§5.2, thesis §3.10).
* `PeerClients`: the `RaftNetwork` per target, created lazily by the factory.

The senders see the node through a `ReplicationContext` (what they may read and
call), not the core.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterator

from raftx.engine.commands import Replicate, SendSnapshot, SendTransferLeader, SendVote
from raftx.engine.events import AppendResponded, Event, ReplicationFailed, SnapshotResponded, VoteResponded
from raftx.errors import RaftError, Timeout, Unreachable
from raftx.messages import AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteResponse
from raftx.network.backoff import Backoff
from raftx.network.protocols import RaftNetwork, RaftNetworkFactory, RPCOption
from raftx.runtime.entries import BatchEntries
from raftx.runtime.log_cache import LogCache
from raftx.runtime.tasks import OrderedSet, close_quietly
from raftx.storage.batch import EncodedBatch
from raftx.storage.protocols import RaftLogReader
from raftx.types import BasicNode, Snapshot

__all__ = ["FRAME_SLACK", "PeerClients", "ReplicationContext", "Replicator", "fit_frame", "send_transfer_leader",
           "send_vote"]

logger = logging.getLogger(__name__)


#: Bytes of a frame kept for everything but the entries (message and RPC headers).
FRAME_SLACK = 1024


def fit_frame(batch: EncodedBatch, max_frame_bytes: int) -> EncodedBatch:
    """``batch``, or its longest prefix (at least one record) whose records fit in one
    frame with `FRAME_SLACK` to spare. The engine sizes requests by the average entry,
    so a few large entries can overshoot; the follower then answers for the prefix
    and the engine resends the rest (a partial success)."""
    budget = max_frame_bytes - FRAME_SLACK
    if len(batch.data) <= budget:
        return batch
    offsets, lengths = batch.offsets, batch.lengths
    k = bisect_right(offsets, budget)  # records starting within the budget
    if k and offsets[k - 1] + lengths[k - 1] > budget:
        k -= 1  # the last of them ends past it
    return batch.slice(batch.first_index, batch.first_index + max(1, k))


class PeerClients:
    """One `RaftNetwork` per target, made by the node's network factory on first use;
    ``node_of(target)`` is the target's address in the effective membership."""

    def __init__(self, network: RaftNetworkFactory, node_of: Callable[[int], BasicNode | None]) -> None:
        self._network = network
        self._node_of = node_of
        self._clients: dict[int, tuple[Any, RaftNetwork]] = {}
        self._creating: dict[int, asyncio.Future[RaftNetwork]] = {}

    async def get(self, target: int) -> RaftNetwork:
        """The client of ``target``, made on first use or when its node changed (concurrent callers share one)."""
        node = self._node_of(target)
        have = self._clients.get(target)
        if have is not None and have[0] == node:
            return have[1]
        pending = self._creating.get(target)
        if pending is not None:
            return await asyncio.shield(pending)
        fut: asyncio.Future[RaftNetwork] = asyncio.get_running_loop().create_future()
        self._creating[target] = fut
        try:
            client: RaftNetwork = await self._network.new_client(
                target, node if node is not None else BasicNode())
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: other waiters re-raise it
            raise
        finally:
            self._creating.pop(target, None)
        old = self._clients.get(target)
        self._clients[target] = (node, client)
        if old is not None:
            await _close_client(old[1])
        fut.set_result(client)
        return client

    def ready(self, target: int) -> RaftNetwork | None:
        """The client of ``target`` if one was made for its current node (no waiting)."""
        have = self._clients.get(target)
        return have[1] if have is not None and have[0] == self._node_of(target) else None

    def peek(self, target: int) -> RaftNetwork | None:
        """The client of ``target`` if one was made."""
        have = self._clients.get(target)
        return None if have is None else have[1]

    async def close(self) -> None:
        """Close every client made so far."""
        clients, self._clients = self._clients, {}
        for _, client in clients.values():
            await _close_client(client)


async def _close_client(client: Any) -> None:
    close = getattr(client, "close", None)
    if close is None:
        return
    try:
        await close()
    except Exception:  # noqa: BLE001 - closing is best effort
        logger.debug("closing a network client failed", exc_info=True)


@dataclass(frozen=True, slots=True)
class ReplicationContext:
    """What the senders of one node may read and call (built by the core)."""

    node_id: int
    #: Queue an engine event (an answer) for the core task.
    post: Callable[[Event], None]
    clients: PeerClients
    #: The latest appended batches as encoded once (DESIGN §2 rule 3).
    log_cache: LogCache
    #: Resolves once storage io ``n`` is written (its entries are readable).
    wait_written: Callable[[int], Awaitable[None]]
    get_log_reader: Callable[[], Awaitable[RaftLogReader]]
    #: The state machine's current snapshot, read on the apply worker.
    current_snapshot: Callable[[], Awaitable[Snapshot | None]]
    max_frame_bytes: int
    #: Per-RPC deadlines in seconds (openraft: RPCOption hard TTL).
    append_timeout: float
    vote_timeout: float
    snapshot_timeout: float
    snapshot_install_wait: float  # the last chunk's deadline: its answer waits for the install


class Replicator:
    """Sends one target's AppendEntries and snapshots, pipelined (see module docstring)."""

    def __init__(self, ctx: ReplicationContext, target: int) -> None:
        self.ctx = ctx
        self.target = target
        self._queue: deque[tuple[Replicate | SendSnapshot, int]] = deque()
        self._wake = asyncio.Event()
        self._tasks: OrderedSet[asyncio.Task[Any]] = OrderedSet()
        self._reader: Any = None
        #: After `Unreachable`, entries and snapshots wait until this loop time (backoff);
        #: heartbeats still go, and the first answer ends the backoff.
        self._retry_at = 0.0
        self._backoff: Iterator[float] | None = None
        #: Sends on the task path not finished yet: later requests take it too, in order.
        self._slow = 0
        #: Answers awaited on the direct path (`_send_now`).
        self._waiting: set[asyncio.Future[bytes]] = set()
        self._closed = False
        self._loop = asyncio.get_running_loop()
        self.task = self._loop.create_task(self._run(), name=f"raftx-replicate-{target}")

    def push(self, cmd: Replicate | SendSnapshot, written_io: int) -> None:
        """Send or queue ``cmd``; its entries are readable once storage io ``written_io``
        is written (cached entries and heartbeats leave at once, in order)."""
        if not self._queue and type(cmd) is Replicate and not self._retry_at:
            req = self._build_now(cmd)
            if req is not None:
                if self._slow or not self._send_now(cmd, req):
                    self._spawn_send(cmd, req)
                return
        self._queue.append((cmd, written_io))
        self._wake.set()

    def _build_now(self, cmd: Replicate) -> AppendEntriesRequest | None:
        """The AppendEntries for ``cmd`` without I/O: a heartbeat or cached entries."""
        entries: Any = ()
        if cmd.last_index >= cmd.first_index:
            batch = self.ctx.log_cache.get_batch(cmd.first_index, cmd.last_index + 1)
            if batch is None:
                return None
            entries = BatchEntries(fit_frame(batch, self.ctx.max_frame_bytes))
        return AppendEntriesRequest(cmd.vote, cmd.prev_log_id, entries, cmd.leader_commit)

    async def _run(self) -> None:
        ctx = self.ctx
        queue = self._queue
        while True:
            if not queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            cmd, written_io = queue.popleft()
            if self._retry_at and (isinstance(cmd, SendSnapshot) or len(cmd)) and self._loop.time() < self._retry_at:
                ctx.post(ReplicationFailed(self.target, cmd.send_id))  # backing off: fail fast
                continue
            if isinstance(cmd, SendSnapshot):
                self._spawn(self._send_snapshot(cmd))
                continue
            try:
                req = await self._build(cmd, written_io)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. the range was purged meanwhile
                logger.info("node %s: cannot read entries %d..%d for node %s: %r", ctx.node_id,
                            cmd.first_index, cmd.last_index, self.target, exc)
                ctx.post(ReplicationFailed(self.target, cmd.send_id))
                continue
            if req is None:
                ctx.post(ReplicationFailed(self.target, cmd.send_id))
                continue
            self._spawn_send(cmd, req)

    async def _build(self, cmd: Replicate, written_io: int) -> AppendEntriesRequest | None:
        """The AppendEntries for ``cmd``; None if the entries are no longer in the log."""
        req = self._build_now(cmd)
        if req is not None:
            return req
        entries: Any = ()
        n = len(cmd)
        if n:
            ctx = self.ctx
            await ctx.wait_written(written_io)
            if self._reader is None:
                self._reader = await ctx.get_log_reader()
            batch = await self._reader.try_get_log_bytes(cmd.first_index, cmd.last_index + 1)
            if len(batch) != n or batch.first_index != cmd.first_index:
                return None  # purged (a snapshot will be sent) or truncated
            entries = BatchEntries(fit_frame(batch, ctx.max_frame_bytes))
        return AppendEntriesRequest(cmd.vote, cmd.prev_log_id, entries, cmd.leader_commit)

    def _send_now(self, cmd: Replicate, req: AppendEntriesRequest) -> bool:
        """Send ``req`` from this callback and take its answer in one (no task per
        request, no hop before the bytes leave), when the target's client is made and
        can (`RpcRaftNetwork.append_entries_nowait`); False: nothing was sent."""
        client: Any = self.ctx.clients.ready(self.target)
        send = getattr(client, "append_entries_nowait", None)
        fut = send(req) if send is not None else None
        if fut is None:
            return False
        loop = self._loop
        timer = loop.call_at(loop.time() + self.ctx.append_timeout, fut.cancel)
        self._waiting.add(fut)
        fut.add_done_callback(lambda f: self._answered(cmd, req, client, f, timer))
        return True

    def _answered(self, cmd: Replicate, req: AppendEntriesRequest, client: Any, fut: asyncio.Future[bytes],
                  timer: asyncio.TimerHandle) -> None:
        self._waiting.discard(fut)
        timer.cancel()
        if self._closed:
            return
        try:
            if fut.cancelled():
                raise Timeout(f"append_entries to node {self.target} timed out after {self.ctx.append_timeout}s")
            resp = client.decode_append_entries(fut.result(), req)
        except Exception as exc:  # noqa: BLE001 - RPCError, or a malformed answer
            self._failed(cmd, exc)
            return
        self._on_success()
        self.ctx.post(AppendResponded(self.target, cmd.send_id, resp))

    def _spawn_send(self, cmd: Replicate, req: AppendEntriesRequest) -> None:
        self._slow += 1
        self._spawn(self._send_append(cmd, req))

    async def _send_append(self, cmd: Replicate, req: AppendEntriesRequest) -> None:
        ctx = self.ctx
        try:
            client = await ctx.clients.get(self.target)
            resp = await client.append_entries(req, RPCOption(ctx.append_timeout))
            if not isinstance(resp, AppendEntriesResponse):
                raise TypeError(f"append_entries returned {type(resp).__name__}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - RPCError, or a broken network implementation
            self._failed(cmd, exc)
            return
        finally:
            self._slow -= 1
        self._on_success()
        ctx.post(AppendResponded(self.target, cmd.send_id, resp))

    def _failed(self, cmd: Replicate, exc: BaseException) -> None:
        _log_rpc_failure(self.ctx.node_id, self.target, "append_entries", exc)
        self._on_failure(exc)
        self.ctx.post(ReplicationFailed(self.target, cmd.send_id))

    async def _send_snapshot(self, cmd: SendSnapshot) -> None:
        ctx = self.ctx
        snap = None
        try:
            snap = await ctx.current_snapshot()
            if snap is None:
                raise RaftError("no snapshot to send")
            client = await ctx.clients.get(self.target)
            logger.info("node %s sends snapshot %s (up to %s) to node %s", ctx.node_id, snap.meta.snapshot_id,
                        snap.meta.last_log_id, self.target)
            resp = await client.full_snapshot(cmd.vote, snap, None, RPCOption(ctx.snapshot_timeout, last_chunk_ttl=ctx.snapshot_install_wait))
            if not isinstance(resp, SnapshotResponse):
                raise TypeError(f"full_snapshot returned {type(resp).__name__}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            _log_rpc_failure(ctx.node_id, self.target, "full_snapshot", exc)
            self._on_failure(exc)
            ctx.post(ReplicationFailed(self.target, cmd.send_id))
            return
        finally:
            if snap is not None:
                close_quietly(snap.snapshot)
        self._on_success()
        ctx.post(SnapshotResponded(self.target, cmd.send_id, resp))

    def _on_failure(self, exc: BaseException) -> None:
        """Back off after `Unreachable` (the network's `RaftNetwork.backoff` delays)."""
        if not isinstance(exc, Unreachable):
            return
        if self._backoff is None:
            client = self.ctx.clients.peek(self.target)
            make = getattr(client, "backoff", None)
            self._backoff = make() if callable(make) else iter(Backoff())
        delay = next(self._backoff, 1.0)
        self._retry_at = self._loop.time() + delay

    def _on_success(self) -> None:
        self._retry_at = 0.0
        self._backoff = None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel this peer's replication task and the tasks it spawned; wait for them to end."""
        self._closed = True
        for fut in list(self._waiting):
            fut.cancel()  # gives the connection's window room back
        tasks = [self.task, *self._tasks]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def send_vote(ctx: ReplicationContext, cmd: SendVote) -> asyncio.Task[None]:
    """Send a (pre-)vote request (§5.2, thesis §9.6); the answer becomes `VoteResponded`."""

    async def run() -> None:
        try:
            client = await ctx.clients.get(cmd.target)
            resp = await client.vote(cmd.req, RPCOption(ctx.vote_timeout))
            if not isinstance(resp, VoteResponse):
                raise TypeError(f"vote returned {type(resp).__name__}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a lost vote is just not counted
            _log_rpc_failure(ctx.node_id, cmd.target, "vote", exc)
            return
        ctx.post(VoteResponded(cmd.target, cmd.req.vote, resp))

    return asyncio.get_running_loop().create_task(run())


def send_transfer_leader(ctx: ReplicationContext, cmd: SendTransferLeader) -> asyncio.Task[None]:
    """Tell ``cmd.target`` the leader hands over to ``cmd.req.to_node_id`` (thesis §3.10)."""

    async def run() -> None:
        try:
            client = await ctx.clients.get(cmd.target)
            await client.transfer_leader(cmd.req, RPCOption(ctx.vote_timeout))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            _log_rpc_failure(ctx.node_id, cmd.target, "transfer_leader", exc)

    return asyncio.get_running_loop().create_task(run())


def _log_rpc_failure(node: int, target: int, what: str, exc: BaseException) -> None:
    if isinstance(exc, RaftError):
        logger.debug("node %s: %s to node %s failed: %r", node, what, target, exc)
    else:
        logger.warning("node %s: %s to node %s failed: %r", node, what, target, exc)
