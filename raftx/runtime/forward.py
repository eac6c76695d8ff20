"""Writes and linearizable reads from any node: a follower hands them to the leader.

``Raft.client_write(data, forward=True)`` (and ``client_write_many``,
``ensure_linearizable``) call `Forwarder`: on the leader the call runs locally; on a
follower it travels as a ``forward`` RPC (`raftx.messages.ForwardRequest`) over the
node's own connection to the leader (the `raftx.network.RaftNetworkFactory` client the
replication uses), where `serve_forward` runs it. The leader serves forwarded calls
only from members of its cluster (`raftx.engine.peer_check`, as every Raft RPC).

Waiting for a leader: with no leader known (an election), the call waits on the
node's metrics for one, up to ``Config.forward_timeout`` seconds, then raises
`ForwardToLeader(None)`.

What is guaranteed across a retry (the forwarder retries by itself, up to the same
deadline, only where that cannot apply a write twice):

* retried: the write was refused before it was proposed: `raftx.errors.NotLeader`
  from the engine (no leader, a transfer running, a lapsed lease), locally or on
  the target (``FORWARD_NOT_PROPOSED``), or the target could not be reached at all
  (`Unreachable`: the request was never sent);
* not retried, `raftx.errors.WriteOutcomeUnknown`: anything after the request may
  have reached the leader's log: the round trip timed out or the connection broke
  (the leader was killed mid-forward), or the leader lost its leadership after
  proposing (the entry may still commit under the next leader);
* a write is applied at most once by this layer. Exactly-once needs the state
  machine's help, because only it sees every replica's applied entries: commands
  carry a ``(client_id, serial)`` session and the state machine returns the recorded
  response for a serial it already applied (Raft thesis §6.3). `raftx.objects` does
  exactly that and retries `WriteOutcomeUnknown` with the same serial;
  `raftx.kv` does it for the key-value service.

Reads need no dedup: the leader confirms its leadership with a quorum (ReadIndex,
thesis §6.4) and returns its read log id; the follower then waits until its own
state machine applied that index, so a local read after it is linearizable.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from raftx.errors import (
    ClientWriteError, ForwardToLeader, NetworkError, NotLeader, RaftError, RemoteError, Timeout, Unreachable,
    WriteOutcomeUnknown,
)
from raftx.messages import (
    FORWARD_FAILED, FORWARD_NOT_PROPOSED, FORWARD_OK, FORWARD_UNKNOWN, ForwardOutcome, ForwardRequest, ForwardResponse,
)
from raftx.network.protocols import RPCOption
from raftx.types import ClientWriteResponse, LogId, ServerState

if TYPE_CHECKING:
    from raftx.runtime.core import RaftCore

__all__ = ["Forwarder", "outcome_of"]

logger = logging.getLogger(__name__)

_Result = ClientWriteResponse | BaseException


def outcome_of(result: _Result) -> ForwardOutcome:
    """The `ForwardOutcome` the leader sends back for one local write result."""
    if isinstance(result, ClientWriteResponse):
        return ForwardOutcome(FORWARD_OK, result.log_id, data=result.data)
    if isinstance(result, NotLeader):
        return ForwardOutcome(FORWARD_NOT_PROPOSED, leader_id=result.leader_id, message=str(result))
    if isinstance(result, ClientWriteError) and not isinstance(result, ForwardToLeader):
        return ForwardOutcome(FORWARD_FAILED, message=f"{type(result).__name__}: {result}")
    # ForwardToLeader after proposing (truncated, or covered by a snapshot), Fatal, ...
    return ForwardOutcome(FORWARD_UNKNOWN, message=f"{type(result).__name__}: {result}")


class Forwarder:
    """Runs a node's ``forward=True`` calls (see the module docstring)."""

    def __init__(self, core: RaftCore, local_read: Callable[[], Awaitable[tuple[LogId | None, LogId | None]]]) -> None:
        self._core = core
        self._local_read = local_read

    # -- leader discovery ----------------------------------------------------------------

    async def _leader(self, deadline: float, hint: int | None) -> int:
        """The node to send to now: this node if it is the leader, else the hint or the
        known leader; waits on the metrics (an election) until ``deadline``."""
        core = self._core
        rx = core.metrics_tx.subscribe()
        loop = asyncio.get_running_loop()
        while True:
            core.check_running()
            m = rx.borrow()
            if m.state is ServerState.LEADER:
                return core.id
            if hint is not None and hint != core.id and core.node_of(hint) is not None:
                return hint
            leader = m.current_leader
            if leader is not None and leader != core.id:
                return leader
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ForwardToLeader(None, None)
            try:
                async with asyncio.timeout(remaining):
                    await rx.changed()
            except TimeoutError:
                raise ForwardToLeader(None, None) from None

    async def _pause(self, deadline: float) -> None:
        """After a refusal: wait for a metrics change (a new leader) or one heartbeat."""
        loop = asyncio.get_running_loop()
        wait = min(self._core.config.heartbeat_interval / 1000, deadline - loop.time())
        if wait <= 0:
            return
        rx = self._core.metrics_tx.subscribe()
        try:
            async with asyncio.timeout(wait):
                await rx.changed()
        except TimeoutError:
            pass

    async def _send(self, target: int, req: ForwardRequest) -> ForwardResponse:
        client: Any = await self._core.clients.get(target)
        forward = getattr(client, "forward", None)
        if forward is None:
            raise ClientWriteError(f"the network client for node {target} cannot forward (no forward method)")
        resp: ForwardResponse = await forward(req, RPCOption(self._core.config.forward_timeout))
        return resp

    # -- writes --------------------------------------------------------------------------

    async def write_many(self, payloads: list[bytes]) -> list[_Result]:
        """Each payload's `ClientWriteResponse` or exception, in order (module docstring)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._core.config.forward_timeout
        results: list[_Result | None] = [None] * len(payloads)
        todo = list(range(len(payloads)))
        hint: int | None = None
        while todo:
            try:
                target = await self._leader(deadline, hint)
            except ForwardToLeader as exc:
                for i in todo:
                    results[i] = exc
                break
            hint = None
            batch = [payloads[i] for i in todo]
            retry: list[int] = []
            if target == self._core.id:
                local: list[Any] = await self._core.submit_write_many(list(batch))
                for i, r in zip(todo, local):
                    if isinstance(r, NotLeader):
                        retry.append(i)
                        hint = r.leader_id
                    else:
                        results[i] = r
            else:
                try:
                    resp = await self._send(target, ForwardRequest("write", tuple(batch)))
                except Unreachable as exc:  # never sent: safe to retry
                    logger.debug("forwarding to node %s: %s", target, exc)
                    retry = todo
                except (Timeout, NetworkError) as exc:  # it may be in the leader's log
                    err = WriteOutcomeUnknown(f"forwarded to node {target}: {type(exc).__name__}: {exc}")
                    for i in todo:
                        results[i] = err
                except (RemoteError, RaftError) as exc:  # refused as a whole (not a member, bad request)
                    for i in todo:
                        results[i] = exc
                else:
                    for i, o in zip(todo, resp.outcomes):
                        if o.status == FORWARD_NOT_PROPOSED:
                            retry.append(i)
                            hint = o.leader_id
                        else:
                            results[i] = _result_of(o, target)
            if retry and loop.time() >= deadline:
                for i in retry:
                    results[i] = NotLeader(hint, None if hint is None else self._core.node_of(hint))
                break
            todo = retry
            if todo:
                await self._pause(deadline)
        return [r if r is not None else ForwardToLeader(None, None) for r in results]

    # -- reads ---------------------------------------------------------------------------

    async def read_log_id(self) -> LogId | None:
        """The leader's confirmed read log id (ReadIndex, thesis §6.4), from any node."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._core.config.forward_timeout
        hint: int | None = None
        last: BaseException = ForwardToLeader(None, None)
        while True:
            target = await self._leader(deadline, hint)
            hint = None
            try:
                if target == self._core.id:
                    read_log_id, _ = await self._local_read()
                    return read_log_id
                o = (await self._send(target, ForwardRequest("read"))).outcomes[0]
                if o.status == FORWARD_OK:
                    return o.log_id
                hint = o.leader_id
                last = ForwardToLeader(o.leader_id) if o.status == FORWARD_NOT_PROPOSED else RemoteError(o.message)
            except (ForwardToLeader, Unreachable, Timeout, NetworkError) as exc:  # a read may be retried
                last = exc
                if isinstance(exc, ForwardToLeader):
                    hint = exc.leader_id
            except RaftError as exc:  # QuorumNotEnough & co.: retry until the deadline
                if isinstance(exc, RemoteError):
                    raise
                last = exc
            if loop.time() >= deadline:
                raise last
            await self._pause(deadline)


def _result_of(o: ForwardOutcome, target: int) -> _Result:
    if o.status == FORWARD_OK:
        if o.log_id is None:
            return WriteOutcomeUnknown(f"node {target} answered a write without a log id")
        return ClientWriteResponse(o.log_id, o.data)
    if o.status == FORWARD_FAILED:
        return ClientWriteError(f"node {target}: {o.message}")
    return WriteOutcomeUnknown(f"node {target}: {o.message}")
