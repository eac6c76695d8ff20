"""Property: a Raft RPC the node refuses changes nothing (issue 11).

Decoded-but-hostile requests (any sender id, any method, terms and indexes up to
``2**63 - 1``, garbage or empty memberships, garbage snapshots) go through the real
encoder and `RaftRpcHandler` into a real node that follows leader 2 of the cluster
{1, 2, 3}. Whenever the handler raises (the request was refused) the node's vote,
log, commit index and membership are exactly what they were; and whatever happens,
the node keeps running.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftx import _core
from raftx.errors import ProtocolError
from raftx.messages import (
    AppendEntriesRequest,
    InstallSnapshotRequest,
    TransferLeaderRequest,
    VoteRequest,
)
from raftx.network import MemRouter
from raftx.network.raft_rpc import MemNetworkFactory, RaftRpcHandler, RpcRaftNetwork
from raftx.raft import Raft
from raftx.storage import MemLogStore, MemStateMachine
from raftx.storage.batch import EncodedBatch
from raftx.types import BasicNode, Entry, LogId, Membership, Snapshot, SnapshotMeta, StoredMembership, Vote
from tests.runtime.raftkit import fast_config
from hostile import node_state

MEMBERS = Membership.new({i: BasicNode(f"mem:{i}") for i in (1, 2, 3)})
LEADER_VOTE = Vote(3, 2, True)


class _Direct:
    """An `RpcRaftNetwork` caller that hands each payload to the handler as ``sender``."""

    def __init__(self, handler: RaftRpcHandler, sender: int) -> None:
        self.handler, self.sender = handler, sender

    async def call(self, method: str, payload: Any = b"", timeout: float | None = None) -> bytes:
        result: bytes = await self.handler(self.sender, method, memoryview(bytes(payload)))
        return result


async def follower() -> tuple[Raft, RaftRpcHandler]:
    """Node 1 following leader 2 (term 3): 5 entries, 3 committed, membership {1, 2, 3}."""
    raft = await Raft.new(1, fast_config(enable_tick=False), MemNetworkFactory(MemRouter()), MemLogStore(),
                          MemStateMachine())
    handler = RaftRpcHandler(raft)
    entries = [Entry(LogId(1, 0), MEMBERS), Entry(LogId(1, 1), b"a"), Entry(LogId(2, 2), None),
               Entry(LogId(3, 3), None), Entry(LogId(3, 4), b"b")]
    resp = await RpcRaftNetwork(_Direct(handler, 2)).append_entries(
        AppendEntriesRequest(LEADER_VOTE, None, entries, LogId(2, 2)))
    assert resp.success
    return raft, handler


terms = st.sampled_from([0, 1, 2, 3, 4, 2**62, 2**62 + 1, 2**63 - 2, 2**63 - 1])
indexes = st.sampled_from([0, 1, 2, 3, 4, 5, 6, 2**62, 2**62 + 1, 2**63 - 1])
node_ids = st.sampled_from([None, 1, 2, 3, 4, 99])
senders = st.sampled_from([1, 2, 3, 4, 99])
votes = st.builds(Vote, terms, node_ids, st.booleans())
log_ids = st.none() | st.builds(LogId, terms, indexes)
membership_payloads = st.sampled_from([
    MEMBERS.to_bytes(),
    Membership.new({99: BasicNode("evil:1")}).to_bytes(),
    Membership().to_bytes(),  # no voter set at all
    b"\xc1 not msgpack",
    b"\x92\x90\x90",  # [[], []]
    b"",
])
kinds = st.sampled_from([_core.codec.KIND_BLANK, _core.codec.KIND_NORMAL, _core.codec.KIND_MEMBERSHIP])
memberships = st.sampled_from([StoredMembership(LogId(1, 0), MEMBERS), StoredMembership(),
                               StoredMembership(LogId(9, 9), Membership.new({99: BasicNode("evil:1")}))])


@st.composite
def appends(draw: st.DrawFn) -> AppendEntriesRequest:
    vote = draw(votes)
    prev = draw(log_ids)
    first = 0 if prev is None else prev.index + 1
    n = draw(st.integers(0, 3))
    records = []
    term = max(0, prev.term if prev is not None else 0)
    for k in range(n):
        term = draw(st.sampled_from([term, min(term + 1, 2**63 - 1), vote.term]))
        kind = draw(kinds)
        payload = draw(membership_payloads) if kind == _core.codec.KIND_MEMBERSHIP else (
            b"" if kind == _core.codec.KIND_BLANK else b"x%d" % k)
        records.append((term, first + k, kind, payload))
    try:
        data = _core.codec.encode_entries(records) if records else b""
        entries: Any = EncodedBatch.from_bytes(data, first) if records else ()
    except (ProtocolError, ValueError, OverflowError):
        entries = ()
    return AppendEntriesRequest(vote, prev, entries, draw(log_ids))


requests = st.one_of(
    st.tuples(st.just("append"), appends()),
    st.tuples(st.just("vote"), st.builds(VoteRequest, votes, log_ids, st.booleans())),
    st.tuples(st.just("transfer"), st.builds(TransferLeaderRequest, votes, st.sampled_from([1, 2, 3, 99]),
                                             log_ids)),
    st.tuples(st.just("snapshot"), st.builds(
        InstallSnapshotRequest, votes,
        st.builds(SnapshotMeta, st.builds(LogId, terms, indexes), memberships, st.just("s")),
        st.just(0), st.sampled_from([b"", b"garbage", b"\x94\xc0\xc0\xc0\x00"]), st.just(True))),
)


async def _one(sender: int, method: str, req: Any) -> None:
    raft, handler = await follower()
    try:
        before = await node_state(raft)
        net = RpcRaftNetwork(_Direct(handler, sender))
        call = {"append": net.append_entries, "vote": net.vote, "transfer": net.transfer_leader,
                "snapshot": net.install_snapshot}[method]
        try:
            await call(req)
        except ProtocolError:
            assert await node_state(raft) == before, f"refused {method} from {sender} changed the node"
        assert raft.metrics().borrow().running_state is None
        assert (await node_state(raft)).vote.term <= 2**62  # never a term that cannot be incremented
    finally:
        await raft.shutdown()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(senders, requests)
def test_a_refused_request_changes_nothing(sender: int, request: tuple[str, Any]) -> None:
    method, req = request
    asyncio.run(_one(sender, method, req))


async def test_garbage_snapshot_through_the_applications_own_transport_is_refused() -> None:
    """`Raft.install_full_snapshot` (no chunking, no sender) checks the data too."""
    import io

    raft, _ = await follower()
    try:
        before = await node_state(raft)
        meta = SnapshotMeta(LogId(3, 10), StoredMembership(LogId(1, 0), MEMBERS), "garbage")
        try:
            await raft.install_full_snapshot(LEADER_VOTE, Snapshot(meta, io.BytesIO(b"garbage")))
        except ProtocolError:
            pass
        else:
            raise AssertionError("a garbage snapshot was installed")
        assert await node_state(raft) == before
        assert raft.metrics().borrow().running_state is None
    finally:
        await raft.shutdown()
