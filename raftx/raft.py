"""`Raft`: the handle to a running raftx node (openraft's ``Raft``, in asyncio Python).

Create a node with ``await Raft.new(node_id, config, network, log_store, state_machine)``;
it restores its state from the stores and starts its core task on the running
event loop. Every coroutine raises `raftx.errors.Fatal` once the node has stopped
(`shutdown`, or a storage failure, DESIGN §2 rule 7). Calls that need the leader
raise `raftx.errors.ForwardToLeader` carrying the leader's id and node when
known. A minimal single-node example::

    import asyncio, raftx
    from raftx.network.raft_rpc import MemNetworkFactory
    from raftx.network import MemRouter
    from raftx.storage import MemLogStore, MemStateMachine

    async def main():
        router = MemRouter()
        async with await raftx.Raft.new(1, raftx.Config(), MemNetworkFactory(router, 1),
                                        MemLogStore(), MemStateMachine()) as raft:
            await raft.initialize([1])
            await raft.wait(5).state(raftx.ServerState.LEADER, "leader")
            resp = await raft.client_write(b"hello")
            print(resp.log_id, resp.data)

    asyncio.run(main())          # or uvloop.run(main()) -- the event loop is the caller's choice

Cancelling a call cancels the *wait*, not the proposal: a cancelled `client_write`
may still commit (as in openraft and etcd).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any, Awaitable, Callable, Iterable, Mapping

from raftx import raft_peer
from raftx.config import Config
from raftx.engine import events as ev
from raftx.engine import following
from raftx.errors import ConfigError, ForwardToLeader, ProtocolError
from raftx.messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    ForwardRequest,
    ForwardResponse,
    InstallSnapshotRequest,
    SnapshotResponse,
    VoteRequest,
    VoteResponse,
)
from raftx.metrics import RaftDataMetrics, RaftMetrics, RaftServerMetrics
from raftx.raft_handles import RuntimeConfigHandle, Trigger, WriteRequest, as_membership, as_payload, deprecated
from raftx.runtime.core import RaftCore
from raftx.runtime.forward import Forwarder
from raftx.runtime.snapshot_recv import SnapshotReceiver
from raftx.runtime.state import RaftState
from raftx.runtime.wait import Wait
from raftx.stats import NodeStats
from raftx.runtime.watch import WatchReceiver
from raftx.network.protocols import RaftNetworkFactory
from raftx.storage.protocols import RaftLogStorage, RaftStateMachine
from raftx.types import BasicNode, ChangeMembers, ClientWriteResponse, LogId, Membership, ReadPolicy, Snapshot, Vote

__all__ = ["Raft", "RuntimeConfigHandle", "Trigger", "WriteRequest"]

_BYTES = {bytes}

logger = logging.getLogger(__name__)


class Raft:
    """A running Raft node (see the module docstring). Cheap to pass around; one per node."""

    def __init__(self, core: RaftCore) -> None:
        """Internal: use ``await Raft.new(...)``."""
        self._core = core
        self._snapshots = SnapshotReceiver(
            self.begin_receiving_snapshot,
            lambda vote, snapshot, sender: self.install_full_snapshot(vote, snapshot, sender=sender),
            core.config.max_snapshot_bytes,
            admit=lambda req, sender: following.admit_snapshot_chunk(core.engine.state, req, sender),
        )
        self._forwarder = Forwarder(core, self.get_read_log_id)

    # -- life cycle ------------------------------------------------------------------

    @classmethod
    async def new(
        cls,
        node_id: int,
        config: Config,
        network: RaftNetworkFactory,
        log_store: RaftLogStorage,
        state_machine: RaftStateMachine,
        *,
        rng: random.Random | None = None,
    ) -> Raft:
        """Restore the node from its stores and start it on the running loop.

        ``network`` is a `raftx.network.RaftNetworkFactory` (e.g.
        `raftx.network.raft_rpc.TcpNetworkFactory`); ``rng`` seeds election
        timeouts (tests). Raises `raftx.errors.ConfigError` for a bad config and
        `raftx.errors.Fatal` if the stores cannot be read.

        Example: ``raft = await Raft.new(1, Config(), network, MemLogStore(), MemStateMachine())``
        """
        if not isinstance(node_id, int) or isinstance(node_id, bool) or not 0 <= node_id < 2**63:
            raise ConfigError(f"node_id must be an int in 0..2**63-1, not {node_id!r}")
        if not isinstance(config, Config):
            raise ConfigError(f"config must be a raftx.Config, not {type(config).__name__}")
        core = await RaftCore.open(node_id, config, network, log_store, state_machine, rng)
        return cls(core)

    async def shutdown(self) -> None:
        """Stop the node: queued writes finish, pending calls raise `Fatal`. Idempotent.

        Example: ``await raft.shutdown()``
        """
        self._snapshots.discard()
        await self._core.shutdown()

    async def __aenter__(self) -> Raft:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    @property
    def id(self) -> int:
        """This node's id."""
        return self._core.id

    @property
    def stats(self) -> NodeStats:
        """This node's counters and latency histograms (`raftx.stats.NodeStats`), read by
        ``raftx serve --metrics-addr``'s ``/metrics``."""
        return self._core.stats

    @property
    def config(self) -> Config:
        """The node's `Config` (treat as read-only): ``raft.config.heartbeat_interval``."""
        return self._core.config

    def runtime_config(self) -> RuntimeConfigHandle:
        """A handle to switch tick / heartbeat / elect at run time: ``raft.runtime_config().elect(False)``."""
        return RuntimeConfigHandle(self)

    def trigger(self) -> Trigger:
        """A handle to make the node act now: ``await raft.trigger().elect()``."""
        return Trigger(self)

    # -- cluster formation -----------------------------------------------------------

    async def initialize(self, members: Iterable[int] | Mapping[int, BasicNode | str] | Membership) -> None:
        """Initialize a pristine node with the initial members (openraft ``initialize``).

        ``members`` is a set/list of ids or a mapping id -> `BasicNode` (or ``"host:port"``).
        Raises `raftx.errors.NotAllowed` if the node already has a log or a vote (safe to
        ignore when several nodes initialize the same cluster), `NotInMembers` if this
        node is not a member.

        Example: ``await raft.initialize({1: BasicNode("127.0.0.1:7001"), 2: ..., 3: ...})``
        """
        m = as_membership(members)
        await self._core.request(lambda fut: ev.Initialize(m, fut))

    async def is_initialized(self) -> bool:
        """True if the node has a log, a vote or a snapshot (it cannot be initialized again).

        Example: ``if not await raft.is_initialized(): await raft.initialize([1, 2, 3])``
        """

        def check(st: RaftState) -> bool:
            v = st.vote
            return (st.last_log_id is not None or v.term > 0 or v.node_id is not None
                    or st.snapshot_meta is not None)

        return bool(await self._core.run_in_core(check))

    # -- writes ----------------------------------------------------------------------

    async def client_write(self, data: bytes, *, forward: bool = False) -> ClientWriteResponse:
        """Replicate ``data``, wait until it is committed and applied (§5.3); return the
        `ClientWriteResponse` with its log id and the state machine's output.

        Raises `ForwardToLeader` on a non-leader. With ``forward=True`` a follower hands
        the write to the leader over its own connection, waiting up to
        ``Config.forward_timeout`` for one during an election; the response's ``data``
        is then the leader's output through msgpack (None if msgpack cannot carry it).
        A forwarded write is applied at most once: it raises
        `raftx.errors.WriteOutcomeUnknown` where it may have been applied
        (`raftx.runtime.forward` says when; `raftx.objects` gives exactly-once).

        Example: ``resp = await raft.client_write(b"set x 1", forward=True); resp.log_id.index``
        """
        if forward:
            result = (await self._forwarder.write_many([as_payload(data)]))[0]
            if isinstance(result, BaseException):
                raise result
            return result
        stats = self._core.stats
        started = time.perf_counter()
        try:
            resp: ClientWriteResponse = await self._core.submit_write(as_payload(data))
        except BaseException:
            stats.proposals_failed += 1
            raise
        stats.proposals_committed += 1
        stats.proposal_seconds.observe(time.perf_counter() - started)
        return resp

    async def client_write_ff(self, data: bytes) -> Awaitable[ClientWriteResponse]:
        """Propose ``data`` and return at once with an awaitable for its response
        (fire and forget; openraft ``client_write_ff``).

        Example: ``pending = await raft.client_write_ff(b"x"); resp = await pending``
        """
        return self._core.submit_write(as_payload(data))

    async def client_write_many(self, datas: Iterable[bytes], *,
                                forward: bool = False) -> list[ClientWriteResponse | BaseException]:
        """Propose several payloads as one batch; return, in order, each response or the
        exception that write failed with (openraft ``client_write_many``). ``forward``:
        as for `client_write` (one round trip to the leader for the batch).

        Example: ``results = await raft.client_write_many([b"a", b"b"], forward=True)``
        """
        payloads: list[bytes | None] = list(datas)
        if set(map(type, payloads)) - _BYTES:  # not all bytes (the common case, checked at C speed)
            payloads = [as_payload(d) for d in payloads]
        if forward:
            return await self._forwarder.write_many(payloads)  # type: ignore[arg-type]
        # One queue item and one future for the whole batch (not one per value).
        stats = self._core.stats
        started = time.perf_counter()
        try:
            results: list[ClientWriteResponse | BaseException] = await self._core.submit_write_many(payloads)
        except BaseException:
            stats.proposals_failed += len(payloads)
            raise
        failed = sum(isinstance(r, BaseException) for r in results)
        stats.proposals_failed += failed
        stats.proposals_committed += len(results) - failed
        stats.proposal_seconds.observe(time.perf_counter() - started)  # one observation per batch
        return results

    # -- reads -----------------------------------------------------------------------

    async def get_read_log_id(self, policy: ReadPolicy = ReadPolicy.READ_INDEX) -> tuple[LogId | None, LogId | None]:
        """Confirm leadership and return ``(read_log_id, last_applied)``: a read is
        linearizable once the state machine applied ``read_log_id`` (openraft
        ``get_read_log_id``).

        ``policy`` (`ReadPolicy`): ``READ_INDEX`` confirms with a quorum round started
        after the call (thesis §6.4, ReadIndex); ``LEASE_READ`` answers at once while
        the leader's read lease holds (a quorum answered a request sent less than about
        ``election_timeout_min - heartbeat_interval`` ago; the bound, its clock-rate
        assumption and what voids it are in `raftx.engine.reads`) and otherwise waits
        for a round like ``READ_INDEX``.

        Raises `ForwardToLeader` or `QuorumNotEnough`; `TypeError` for a ``policy``
        that is not a `ReadPolicy`.

        Example::

            read_log_id, applied = await raft.get_read_log_id(ReadPolicy.LEASE_READ)
            if read_log_id is not None and (applied is None or applied < read_log_id):
                await raft.wait(5).applied_index_at_least(read_log_id.index, "read")
        """
        if not isinstance(policy, ReadPolicy):
            raise TypeError(f"policy must be a raftx.ReadPolicy, not {policy!r}")
        lease = policy is ReadPolicy.LEASE_READ
        result = await self._core.request(lambda fut: ev.GetReadLogId(fut, lease))
        return result  # type: ignore[no-any-return]

    async def ensure_linearizable(self, policy: ReadPolicy = ReadPolicy.READ_INDEX, *,
                                  forward: bool = False) -> LogId | None:
        """Make a following local read linearizable (thesis §6.4): confirm leadership
        (`get_read_log_id` with ``policy``) and wait until the state machine applied the
        read log id; return it.

        With ``forward=True`` it works on any node: a follower asks the leader for its
        confirmed read log id (the leader confirms with ``READ_INDEX`` whatever ``policy``
        says; waiting up to ``Config.forward_timeout`` for a leader) and waits until its
        own state machine applied it.

        Example: ``await raft.ensure_linearizable(); value = my_state_machine.get(key)``;
        ``await raft.ensure_linearizable(ReadPolicy.LEASE_READ)`` skips the round trip
        while the lease holds.
        """
        if forward:
            read_log_id = await self._forwarder.read_log_id()
            if read_log_id is not None:
                await self.wait(None).applied_index_at_least(read_log_id.index, "ensure_linearizable")
            return read_log_id
        read_log_id, applied = await self.get_read_log_id(policy)
        if read_log_id is not None and (applied is None or applied.index < read_log_id.index):
            await self.wait(None).applied_index_at_least(read_log_id.index, "ensure_linearizable")
        return read_log_id

    def write(self, data: bytes) -> WriteRequest:
        """A write to await, optionally conditional (openraft ``Raft::write``):
        ``await raft.write(b"x")`` is `client_write`; ``await raft.write(b"x").with_leader(lid)``
        appends only if this node still leads with `raftx.types.LeaderId` ``lid`` (e.g.
        ``raft.metrics().borrow().vote.leader_id`` read earlier), else raises
        `ForwardToLeader` naming the current leader: a leader that changed, even to a new
        term of this same node, refuses it (the caller's view is stale).
        """
        return WriteRequest(self, as_payload(data))

    async def current_leader(self) -> int | None:
        """The leader this node knows of (from its metrics), or None.

        Example: ``leader = await raft.current_leader()``
        """
        self._core.check_running()
        return self._core.metrics_tx.value.current_leader

    def millis_since_leader_seen(self) -> int | None:
        """Milliseconds since this node last heard from a leader (on the leader: since a
        quorum last acknowledged it, §6 of the thesis' lease), or None if it never did.
        Not a metrics field: it changes on every heartbeat, and would wake every
        metrics watcher that often. ``/health`` compares it with the election timeout.

        Example: ``healthy = (ms := raft.millis_since_leader_seen()) is not None and ms < 600``
        """
        seen = self._core.engine.leader_seen_at
        return None if seen is None else max(0, self._core.now_ms() - seen)

    def leader_committed_index(self) -> int:
        """The highest commit index a leader sent this node (-1: none yet; on a leader:
        its own commit index). Unlike ``metrics().committed`` on a lagging follower it
        is not capped by this node's log, so ``/ready`` waits until it is applied."""
        eng = self._core.engine
        if eng.leader is not None:
            return -1 if eng.committed is None else int(eng.committed.index)
        return int(eng.leader_committed)

    # -- membership (thesis §4.3) ----------------------------------------------------

    async def add_learner(self, node_id: int, node: BasicNode | str, blocking: bool = True) -> ClientWriteResponse:
        """Add ``node_id`` as a learner (receives the log, does not vote); with
        ``blocking``, wait until the leader has replicated the log up to the entry
        that added it (ready to become a voter with `change_membership`).

        Example: ``await raft.add_learner(4, BasicNode("127.0.0.1:7004"))``
        """
        if not isinstance(node_id, int) or isinstance(node_id, bool) or node_id < 0:
            raise TypeError(f"node_id must be an int >= 0, not {node_id!r}")
        n = node if isinstance(node, BasicNode) else BasicNode(str(node))
        resp: ClientWriteResponse = await self._core.request(lambda fut: ev.AddLearner(node_id, n, fut))
        if blocking and node_id != self.id:
            want = resp.log_id.index

            def caught_up(m: RaftMetrics) -> bool:
                if m.replication is None:
                    return True  # no longer leader: checked below
                matched = m.replication.get(node_id)
                return matched is not None and matched.index >= want

            m = await self.wait(None).metrics(caught_up, f"learner {node_id} catches up to {want}")
            if m.replication is None:
                raise ForwardToLeader(m.current_leader, None if m.current_leader is None
                                      else m.membership.get_node(m.current_leader))
        return resp

    async def change_membership(
        self, members: ChangeMembers | Iterable[int] | Mapping[int, BasicNode], retain: bool = False
    ) -> ClientWriteResponse:
        """Change the voters through joint consensus (thesis §4.3); answers once the final
        uniform configuration is applied. One change at a time (`InProgress`). With
        ``retain``, removed voters stay as learners, else they leave the cluster.

        What ``members`` means:

        * a set / iterable of ids: the voters become **exactly** these (openraft's
          ``ReplaceAllVoters``); new voters must be learners first (`LearnerNotFound`);
        * a mapping ``{id: node}``: **add** these voters to the current ones, through
          the learner stage: each is added as a learner and caught up (`add_learner`,
          blocking), then made a voter (``ChangeMembers.AddVoterIds``). (openraft reads
          a map as "replace all voters with these nodes"; raftx does not, so
          ``change_membership({4: node})`` never drops voters 1..3);
        * a `ChangeMembers` value: exactly that change (``AddVoters``, ``RemoveVoters``,
          ``ReplaceAllVoters``, ``AddNodes``, ``SetNodes``, ``RemoveNodes``, ...).

        Example: ``await raft.change_membership({1, 2, 3, 4, 5}, retain=False)``;
        ``await raft.change_membership({6: BasicNode("10.0.0.6:7006")})`` adds voter 6.
        """
        if isinstance(members, ChangeMembers):
            changes = members
        elif isinstance(members, Mapping):
            nodes = {int(k): (v if isinstance(v, BasicNode) else BasicNode(str(v))) for k, v in members.items()}
            if not nodes:
                raise TypeError("change_membership takes a non-empty mapping {id: node}")
            for node_id, node in nodes.items():
                await self.add_learner(node_id, node, blocking=True)  # the learner stage (thesis §4.2.1)
            changes = ChangeMembers.AddVoterIds(nodes)
        else:
            changes = ChangeMembers.coerce([int(i) for i in members])
        return await self._core.request(  # type: ignore[no-any-return]
            lambda fut: ev.ChangeMembership(changes, bool(retain), fut))

    # -- RPCs from peers -------------------------------------------------------------

    async def append_entries(self, rpc: AppendEntriesRequest, *, sender: int | None = None) -> AppendEntriesResponse:
        """Handle an AppendEntries from the leader (§5.3); answered once the entries are
        durable. ``rpc.entries`` may be `Entry` objects or an `raftx.storage.EncodedBatch`.

        ``sender`` is the node id the transport authenticated for this request (the
        hello's, `raftx.network.raft_rpc.RaftRpcHandler` passes it): it must be a member
        and the leader the request names, else `PeerNotAuthorized` and nothing changes
        (`raftx.engine.peer_check`). None (an application's own transport without peer
        identities) skips that check; the content is checked either way.

        Example (an application's own transport): ``resp = await raft.append_entries(req)``
        """
        return await raft_peer.append_entries(self._core, rpc, sender)

    def start_append_entries(self, rpc: AppendEntriesRequest, *,
                             sender: int | None = None) -> asyncio.Future[AppendEntriesResponse]:
        """`append_entries` without a coroutine, for a transport that pipelines: the
        request is handed to the node before this returns, so the node handles requests
        in the order of these calls (§5.3: a leader's entries in log order), and the
        returned future resolves with the answer once the entries are durable (or with
        the error). A request of the wrong type, or a node that stopped, raises here.
        Each request's answer comes in the order the requests were started.

        Example (a transport's receive callback)::

            fut = raft.start_append_entries(req, sender=peer_id)
            fut.add_done_callback(lambda f: send_answer(request_id, f))
        """
        return raft_peer.start_append_entries(self._core, rpc, sender)

    async def vote(self, rpc: VoteRequest, *, sender: int | None = None) -> VoteResponse:
        """Handle a RequestVote from a candidate (§5.2); a grant leaves once persisted.

        ``sender``: as for `append_entries` (the candidate must be the sender).

        Example: ``resp = await raft.vote(VoteRequest(Vote(2, 3), last_log_id))``
        """
        return await raft_peer.vote(self._core, rpc, sender)

    async def handle_transfer_leader(self, req: Any, *, sender: int | None = None) -> None:
        """Handle a leadership transfer notice from the leader (thesis §3.10); called by a
        transport's server side: ``await raft.handle_transfer_leader(req)``.

        ``sender``: as for `append_entries`; it must be the current leader.
        Raises `ProtocolError` (`PeerNotAuthorized`) for a request refused unchanged.
        """
        await raft_peer.transfer_leader(self._core, req, sender)

    async def serve_forward(self, req: ForwardRequest, *, sender: int | None = None) -> ForwardResponse:
        """Run client calls a follower forwarded (`raftx.runtime.forward`): the writes of
        ``req`` as one batch, or a read check; called by a transport's server side.

        ``sender``: as for `append_entries`; it must be a member (else
        `PeerNotAuthorized`, nothing proposed).
        Example: ``resp = await raft.serve_forward(ForwardRequest("write", (b"x",)))``
        """
        return await raft_peer.serve_forward(self._core, req, sender, self.get_read_log_id)

    # -- snapshots (§7) --------------------------------------------------------------

    async def begin_receiving_snapshot(self) -> Any:
        """A writable binary file to stream a leader's snapshot into (for an application
        that moves snapshots with its own transport); then `install_full_snapshot`.

        Example: ``f = await raft.begin_receiving_snapshot(); f.write(chunk)``
        """
        self._core.check_running()
        return await self._core.sm.begin_receiving_snapshot()

    async def install_full_snapshot(self, vote: Vote, snapshot: Snapshot, *,
                                    sender: int | None = None) -> SnapshotResponse:
        """Install a completely received snapshot from the leader with ``vote`` (§7).

        The node ignores a snapshot not newer than its commit index. Returns the
        `SnapshotResponse` (this node's vote). ``sender``: as for `append_entries`.
        The request is checked first (`receive_snapshot_chunk`'s rules), then the data
        with the state machine's ``verify_snapshot(meta, file)`` when it has one: data
        it refuses (`StorageError`) raises `ProtocolError` and changes nothing, where a
        failed install after the log was purged would stop the node.

        Example: ``await raft.install_full_snapshot(leader_vote, Snapshot(meta, f))``
        """
        return await raft_peer.install_full_snapshot(self._core, vote, snapshot, sender)

    async def install_snapshot(self, req: InstallSnapshotRequest) -> SnapshotResponse:
        """Deprecated: receive one chunk of a snapshot; use `install_full_snapshot`.

        Returns this node's `SnapshotResponse` for every chunk.
        """
        deprecated("install_snapshot", "install_full_snapshot")
        return await self.receive_snapshot_chunk(req)

    async def receive_snapshot_chunk(self, req: InstallSnapshotRequest, checksum: int | None = None, *,
                                     sender: int | None = None, connection: Any = None) -> SnapshotResponse:
        """Take one chunk of a streamed snapshot (§7); installs on the last one after
        verifying ``checksum`` (CRC-32 of the whole snapshot) when given. Called by a
        transport's server side: ``resp = await raft.receive_snapshot_chunk(req, crc)``.

        No byte is stored unless the chunk carries the vote of the leader this node
        follows (and ``sender``, as for `append_entries`, is that leader), within
        ``Config.max_snapshot_bytes`` and the free disk (`raftx.runtime.snapshot_recv`).
        ``connection`` (anything with a ``closed`` future, e.g. the server's
        `raftx.network.server.PeerConnection`) ties the transfer to it: it is discarded
        when that connection closes. Raises `ProtocolError` for a refused chunk."""
        if not isinstance(req, InstallSnapshotRequest):
            raise ProtocolError(f"expected an InstallSnapshotRequest, not {type(req).__name__}")
        self._core.check_running()
        resp = await self._snapshots.receive(req, checksum, sender=sender, owner=connection)
        if resp is None:
            return SnapshotResponse(self._core.engine.vote)
        return resp

    async def get_snapshot(self) -> Snapshot | None:
        """The state machine's latest snapshot (the caller closes ``snapshot.snapshot``).

        Example: ``snap = await raft.get_snapshot()``
        """
        core = self._core
        core.check_running()
        return await core.apply_worker.call(core.sm.get_current_snapshot)  # type: ignore[no-any-return]

    # -- state access ----------------------------------------------------------------

    async def with_raft_state(self, fn: Callable[[RaftState], Any]) -> Any:
        """Run ``fn(state)`` inside the core task (read-only `RaftState`); return its result.

        Example: ``committed = await raft.with_raft_state(lambda st: st.committed)``
        """
        return await self._core.run_in_core(fn)

    def external_request(self, fn: Callable[[RaftState], Any]) -> None:
        """Run ``fn(state)`` inside the core task, fire and forget (dropped if stopped).

        Example: ``raft.external_request(lambda st: print(st.vote))``
        """
        core = self._core
        if core.stopped is not None:
            return
        core.call_soon(fn)

    def metrics(self) -> WatchReceiver[RaftMetrics]:
        """A watch receiver of this node's `RaftMetrics` (``borrow()``, ``await changed()``,
        ``async for``).

        Example: ``print(raft.metrics().borrow().state)``
        """
        return self._core.metrics_tx.subscribe()

    def data_metrics(self) -> WatchReceiver[RaftDataMetrics]:
        """A watch receiver of the log / apply progress subset of the metrics; changes
        only when those do. Example: ``async for m in raft.data_metrics(): print(m.last_applied)``"""
        return self._core.data_tx.subscribe()

    def server_metrics(self) -> WatchReceiver[RaftServerMetrics]:
        """A watch receiver of the role / membership subset of the metrics; changes only
        when those do. Example: ``await raft.server_metrics().changed()``"""
        return self._core.server_tx.subscribe()

    def wait(self, timeout: float | None = None) -> Wait:
        """Wait for conditions on the metrics, each bounded by ``timeout`` seconds (None:
        no limit); raises `raftx.errors.WaitTimeout` naming the message.

        Example: ``await raft.wait(1.0).log(3, "log")``
        """
        return Wait(self._core.metrics_tx.subscribe(), timeout)

    # -- deprecated names (openraft 0.8 / 0.9) ----------------------------------------

    def enable_tick(self, enabled: bool) -> None:
        """Deprecated: use ``runtime_config().tick(enabled)``."""
        deprecated("enable_tick", "runtime_config().tick")
        self.runtime_config().tick(enabled)

    def enable_heartbeat(self, enabled: bool) -> None:
        """Deprecated: use ``runtime_config().heartbeat(enabled)``."""
        deprecated("enable_heartbeat", "runtime_config().heartbeat")
        self.runtime_config().heartbeat(enabled)

    def enable_elect(self, enabled: bool) -> None:
        """Deprecated: use ``runtime_config().elect(enabled)``."""
        deprecated("enable_elect", "runtime_config().elect")
        self.runtime_config().elect(enabled)

    async def trigger_elect(self) -> None:
        """Deprecated: use ``trigger().elect()``."""
        deprecated("trigger_elect", "trigger().elect")
        await self.trigger().elect()

    async def trigger_heartbeat(self) -> None:
        """Deprecated: use ``trigger().heartbeat()``."""
        deprecated("trigger_heartbeat", "trigger().heartbeat")
        await self.trigger().heartbeat()

    async def trigger_snapshot(self) -> None:
        """Deprecated: use ``trigger().snapshot()``."""
        deprecated("trigger_snapshot", "trigger().snapshot")
        await self.trigger().snapshot()

    async def purge_log(self, upto: int) -> None:
        """Deprecated: use ``trigger().purge_log(upto)``."""
        deprecated("purge_log", "trigger().purge_log")
        await self.trigger().purge_log(upto)

    async def is_leader(self) -> None:
        """Deprecated: use `ensure_linearizable`. Raises `ForwardToLeader` /
        `QuorumNotEnough` unless this node is the leader confirmed by a quorum."""
        deprecated("is_leader", "ensure_linearizable")
        await self.get_read_log_id()

    def __repr__(self) -> str:
        m = self._core.metrics_tx.value
        return f"Raft(id={self.id}, state={m.state.value}, term={m.current_term}, leader={m.current_leader})"
