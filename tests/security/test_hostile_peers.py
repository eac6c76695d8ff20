"""Hostile peers against a 3-node TCP cluster (issue 11): each class of attack, from a
*stranger* (a hello naming a node id that is no member) and from a *forged member*
(a hello naming a member's id, the best a peer can do without TLS).

Every refused request must leave the target's vote, log, commit index and
membership exactly as they were, and the node running; the cluster keeps working.
"""

from __future__ import annotations

import asyncio

import pytest
from hostile import STRANGER, HostilePeer, NodeState, node_state, spool_files

from raftx import _core
from raftx.config import Config
from raftx.errors import RemoteError
from raftx.messages import (
    AppendEntriesRequest,
    InstallSnapshotRequest,
    TransferLeaderRequest,
    VoteRequest,
)
from raftx.raft import Raft
from raftx.storage.batch import EncodedBatch
from raftx.types import Entry, LogId, ServerState, SnapshotMeta, Vote
from tests.runtime.raftkit import WAIT, Cluster, fast_config

pytestmark = pytest.mark.timeout(120)

MAX_TERM = 2**63 - 1
#: Over the 8 MiB a snapshot receive file keeps in memory, so a spooled chunk is on disk.
BIG_CHUNK = b"\x00" * (9 << 20)


async def roles(c: Cluster) -> tuple[Raft, Raft, Raft]:
    """(leader, follower, other follower) of a freshly initialized 3-node cluster."""
    leader = await c.initialize([1, 2, 3])
    f, g = (c.nodes[i] for i in sorted(c.nodes) if i != leader.id)
    await leader.client_write(b"before")
    for r in c.nodes.values():
        await r.wait(WAIT).applied_index_at_least(leader.metrics().borrow().last_log_index or 0, "replicated")
    return leader, f, g


async def assert_cluster_works(c: Cluster, leader: Raft) -> None:
    """The leader still leads, every node runs and a write reaches all of them."""
    resp = await leader.client_write(b"after")
    for r in c.nodes.values():
        m = await r.wait(WAIT).applied_index_at_least(resp.log_id.index, "still replicating")
        assert m.running_state is None
    assert leader.metrics().borrow().state == ServerState.LEADER


async def refused(call) -> RemoteError:
    with pytest.raises(RemoteError) as info:
        await call
    return info.value


# -- a term that cannot be incremented ------------------------------------------------------


@pytest.mark.parametrize("variant", ["stranger", "forged-member"])
async def test_heartbeat_with_the_largest_term_is_refused(tcp_cluster: Cluster, variant: str) -> None:
    c = tcp_cluster
    leader, f, g = await roles(c)
    sender = STRANGER if variant == "stranger" else g.id
    before = await node_state(f)
    async with HostilePeer(c, f.id, sender) as peer:
        err = await refused(peer.append_entries(AppendEntriesRequest(Vote(MAX_TERM, sender, True))))
    assert await node_state(f) == before
    m = f.metrics().borrow()  # counted as what it is: a stranger / an out-of-range term
    if variant == "stranger":
        assert (err.remote_type, m.rpcs_unauthorized, m.rpcs_invalid) == ("PeerNotAuthorized", 1, 0)
    else:
        assert (err.remote_type, m.rpcs_unauthorized, m.rpcs_invalid) == ("ProtocolError", 0, 1)
    await f.trigger().elect()  # the election that used to raise ValueError (Vote(term + 1))
    assert f.metrics().borrow().running_state is None
    await assert_cluster_works(c, await c.leader())


# -- deposing the leader ------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["stranger", "forged-member"])
async def test_heartbeat_with_a_higher_vote_does_not_depose_the_leader(tcp_cluster: Cluster, variant: str) -> None:
    c = tcp_cluster
    leader, f, g = await roles(c)
    # forged member: the hello says f, the vote names g (identity must match the connection)
    sender, named = (STRANGER, STRANGER) if variant == "stranger" else (f.id, g.id)
    before = await node_state(leader)
    async with HostilePeer(c, leader.id, sender) as peer:
        await refused(peer.append_entries(AppendEntriesRequest(Vote(before.vote.term + 5, named, True))))
    assert await node_state(leader) == before
    await assert_cluster_works(c, leader)


@pytest.mark.parametrize("variant", ["stranger", "forged-member"])
async def test_append_with_leader_commit_does_not_inject_a_committed_write(tcp_cluster: Cluster,
                                                                           variant: str) -> None:
    c = tcp_cluster
    leader, f, g = await roles(c)
    sender, named = (STRANGER, STRANGER) if variant == "stranger" else (g.id, leader.id)
    before = await node_state(f)
    assert before.last_log_id is not None
    term = before.vote.term + 1
    evil = LogId(term, before.last_log_id.index + 1)
    req = AppendEntriesRequest(Vote(term, named, True), before.last_log_id, [Entry(evil, b"injected")], evil)
    async with HostilePeer(c, f.id, sender) as peer:
        await refused(peer.append_entries(req))
    assert await node_state(f) == before
    assert b"injected" not in c.sms[f.id].data.values()
    await assert_cluster_works(c, leader)
    assert b"injected" not in c.sms[f.id].data.values()


# -- votes -------------------------------------------------------------------------------------------


async def test_stranger_vote_request_naming_the_leader_is_refused(tcp_cluster: Cluster) -> None:
    c = tcp_cluster
    leader, f, _ = await roles(c)
    before = await node_state(f)
    req = VoteRequest(Vote(before.vote.term + 1, leader.id), LogId(MAX_TERM >> 1, 1 << 40))
    async with HostilePeer(c, f.id, STRANGER) as peer:
        await refused(peer.vote(req))
    assert await node_state(f) == before
    await assert_cluster_works(c, leader)


async def test_forged_leader_vote_request_does_not_skip_the_leader_lease(tcp_cluster: Cluster) -> None:
    """The hello and the candidate both name the current leader: indistinguishable from
    it without TLS, but the lease still protects the leader it has just heard from."""
    c = tcp_cluster
    leader, f, _ = await roles(c)
    before = await node_state(f)
    req = VoteRequest(Vote(before.vote.term + 1, leader.id), LogId(MAX_TERM >> 1, 1 << 40))
    async with HostilePeer(c, f.id, leader.id) as peer:
        resp = await peer.vote(req)
    assert not resp.vote_granted
    assert await node_state(f) == before
    await assert_cluster_works(c, leader)


@pytest.mark.parametrize("variant", ["stranger", "forged-member"])
async def test_vote_request_for_another_candidate_is_refused(tcp_cluster: Cluster, variant: str) -> None:
    c = tcp_cluster
    leader, f, g = await roles(c)
    sender = STRANGER if variant == "stranger" else g.id
    await c.stop(leader.id)  # no lease left to hide behind: only the identity check refuses
    before = await node_state(f)
    req = VoteRequest(Vote(before.vote.term + 1, leader.id), LogId(MAX_TERM >> 1, 1 << 40))
    async with HostilePeer(c, f.id, sender) as peer:
        err = await refused(peer.vote(req))
    assert err.remote_type == "PeerNotAuthorized"
    assert (await node_state(f)).vote != req.vote  # (f and g may elect each other meanwhile)


# -- leadership transfer replay --------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["stranger", "forged-member"])
async def test_replayed_transfer_leader_forces_no_election(tcp_cluster: Cluster, variant: str) -> None:
    c = tcp_cluster
    leader, f, g = await roles(c)
    sender = STRANGER if variant == "stranger" else g.id  # g is a member, not the leader
    before = await node_state(f)  # before.vote is what kv.status shows anyone
    async with HostilePeer(c, f.id, sender) as peer:
        await refused(peer.transfer_leader(TransferLeaderRequest(before.vote, f.id, before.last_log_id)))
    assert await node_state(f) == before
    await assert_cluster_works(c, leader)


# -- malformed content from the leader's own id ------------------------------------------------------


def posing_as_leader(variant: str, before: NodeState, leader: Raft) -> tuple[int, Vote, int]:
    """``(sender, vote, next index)``: a stranger naming itself, or a forged leader that
    sends the leader's id and current vote (indistinguishable from it without TLS)."""
    assert before.last_log_id is not None
    if variant == "stranger":
        return STRANGER, Vote(before.vote.term, STRANGER, True), before.last_log_id.index + 1
    return leader.id, before.vote, before.last_log_id.index + 1


@pytest.mark.parametrize("variant", ["stranger", "forged-leader"])
async def test_malformed_membership_record_is_refused_and_the_node_keeps_running(tcp_cluster: Cluster,
                                                                                 variant: str) -> None:
    c = tcp_cluster
    leader, f, _ = await roles(c)
    before = await node_state(f)
    sender, vote, index = posing_as_leader(variant, before, leader)
    data = _core.codec.encode_entries([(vote.term, index, _core.codec.KIND_MEMBERSHIP, b"\xc1 not msgpack")])
    req = AppendEntriesRequest(vote, before.last_log_id, EncodedBatch.from_bytes(data, index))
    async with HostilePeer(c, f.id, sender) as peer:
        await refused(peer.append_entries(req))
    assert await node_state(f) == before
    await assert_cluster_works(c, leader)


@pytest.mark.parametrize("variant", ["stranger", "forged-leader"])
async def test_garbage_one_chunk_snapshot_is_refused_and_the_node_keeps_running(tcp_cluster: Cluster,
                                                                                variant: str) -> None:
    c = tcp_cluster
    leader, f, _ = await roles(c)
    before = await node_state(f)
    sender, vote, index = posing_as_leader(variant, before, leader)
    meta = SnapshotMeta(LogId(vote.term, index + 10), before.membership, "evil")
    async with HostilePeer(c, f.id, sender) as peer:
        await refused(peer.install_snapshot(InstallSnapshotRequest(vote, meta, 0, b"garbage", True)))
    assert await node_state(f) == before
    await assert_cluster_works(c, leader)


# -- a refused request changes nothing, even the vote ---------------------------------------------------


async def test_forged_member_request_answered_protocol_error_saves_no_vote(tcp_cluster: Cluster) -> None:
    """A higher vote naming the sender, with a prev_log_id that conflicts with the
    committed log: refused (Log Matching, §5.3) before the vote is accepted."""
    c = tcp_cluster
    leader, f, g = await roles(c)
    before = await node_state(f)
    assert before.committed is not None
    prev = LogId(before.committed.term + 7, before.committed.index)  # not our term there
    req = AppendEntriesRequest(Vote(before.vote.term + 3, g.id, True), prev)
    async with HostilePeer(c, f.id, g.id) as peer:
        err = await refused(peer.append_entries(req))
    assert err.remote_type == "ProtocolError"
    assert await node_state(f) == before
    await assert_cluster_works(c, leader)


# -- snapshot spooling -------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["stranger", "forged-member"])
async def test_snapshot_chunk_without_the_leaders_vote_is_not_spooled(tcp_cluster: Cluster, variant: str,
                                                                       tmp_path) -> None:
    c = tcp_cluster
    leader, f, g = await roles(c)
    before = await node_state(f)
    assert before.last_log_id is not None
    sender = STRANGER if variant == "stranger" else g.id
    stale = Vote(max(0, before.vote.term - 1), sender, True)
    meta = SnapshotMeta(LogId(stale.term, before.last_log_id.index + 10), before.membership, "spool")
    spool_dir = tmp_path / f"node{f.id}" / "snap"
    async with HostilePeer(c, f.id, sender) as peer:
        chunk = peer.install_snapshot(InstallSnapshotRequest(stale, meta, 0, BIG_CHUNK, False))
        if variant == "stranger":
            assert (await refused(chunk)).remote_type == "PeerNotAuthorized"
        else:  # what an honest stale leader gets: the node's higher vote, so it steps down (§5.1)
            assert (await chunk).vote == before.vote
        assert spool_files(spool_dir) == []
    assert await node_state(f) == before


async def test_abandoned_snapshot_transfer_is_removed_when_its_connection_closes(tcp_cluster: Cluster,
                                                                                 tmp_path) -> None:
    c = tcp_cluster
    leader, f, _ = await roles(c)
    before = await node_state(f)
    assert before.last_log_id is not None
    meta = SnapshotMeta(LogId(before.vote.term, before.last_log_id.index + 10), before.membership, "left")
    spool_dir = tmp_path / f"node{f.id}" / "snap"
    peer = HostilePeer(c, f.id, leader.id)  # the leader's id and vote: accepted until it hangs up
    await peer.install_snapshot(InstallSnapshotRequest(before.vote, meta, 0, BIG_CHUNK, False))
    assert spool_files(spool_dir) != []
    await peer.close()
    async with asyncio.timeout(WAIT):
        while spool_files(spool_dir):  # no event tells the test when the server saw the close
            await asyncio.sleep(0.01)
    assert await node_state(f) == before


async def test_snapshot_larger_than_max_snapshot_bytes_is_refused(tmp_path) -> None:
    c = Cluster("tcp", durable=True, tmp=tmp_path, config=fast_config(max_snapshot_bytes=4 << 20))
    try:
        leader, f, _ = await roles(c)
        before = await node_state(f)
        assert before.last_log_id is not None
        meta = SnapshotMeta(LogId(before.vote.term, before.last_log_id.index + 10), before.membership, "big")
        async with HostilePeer(c, f.id, leader.id) as peer:
            await refused(peer.install_snapshot(InstallSnapshotRequest(before.vote, meta, 0, BIG_CHUNK, False)))
            assert spool_files(tmp_path / f"node{f.id}" / "snap") == []
        assert await node_state(f) == before
        assert Config().max_snapshot_bytes > 0
    finally:
        await c.close()


async def test_a_joining_learner_is_reachable_and_then_refuses_strangers(tcp_cluster: Cluster) -> None:
    """Bootstrapping rule: the new node has no membership and accepts the leader; once
    the log gave it the cluster's membership, a stranger is refused."""
    c = tcp_cluster
    leader, _, _ = await roles(c)
    learner = await c.start(4)
    await leader.add_learner(4, c.addr(4), blocking=True)
    before = await node_state(learner)
    assert 4 in before.membership.membership.learner_ids()
    async with HostilePeer(c, 4, STRANGER) as peer:
        err = await refused(peer.append_entries(AppendEntriesRequest(Vote(before.vote.term + 1, STRANGER, True))))
    assert err.remote_type == "PeerNotAuthorized"
    assert await node_state(learner) == before
    await assert_cluster_works(c, leader)
