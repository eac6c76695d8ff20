"""Leadership transfer scenarios (correctness-notes §1.7: S25, S26) against the engine.

raftx's transfer (thesis §3.10, openraft ``trigger().transfer_leader``): the leader
stops accepting writes, waits until the target's log matches its own, then sends
`TransferLeaderRequest` to every node; they exempt the target from the leader lease
and the target campaigns at once. A transfer that has not deposed the leader within
``election_timeout_max`` is abandoned. The leader lease is on (openraft default)
unless said otherwise.
"""

from __future__ import annotations

from raftx.config import SnapshotPolicy
from raftx.engine import commands as cmd
from raftx.engine import events as ev
from raftx.errors import ForwardToLeader
from raftx.types import ChangeMembers, ServerState

from tests.engine.harness import Cluster, Reply, booted_cluster, campaign, of_type


def _leader_1(**config: object) -> Cluster:
    cl = booted_cluster(3, **config)
    campaign(cl, 1)
    cl.stabilize()
    assert cl[1].state is ServerState.LEADER
    return cl


def transfer(cl: Cluster, to: int) -> None:
    cl[1].handle(ev.TriggerTransferLeader(to))


def _write_refused(cl: Cluster, node_id: int = 1) -> bool:
    [reply] = cl.write(node_id, b"probe-write")
    return reply.done and isinstance(reply.value, ForwardToLeader)


# -- S25 -----------------------------------------------------------------------------------------


def test_s25_transfer_to_up_to_date_follower() -> None:
    """S25 (TestLeaderTransferToUpToDateNode): 3's log matches, so the transfer is sent
    at once; 3 wins despite the others' lease (the transfer exempts it) and 1 follows."""
    cl = _leader_1()
    transfer(cl, 3)
    cl.stabilize()
    assert cl[3].state is ServerState.LEADER and cl[3].engine.vote.term == 2
    assert cl[1].state is ServerState.FOLLOWER
    assert cl[1].engine.current_leader == 3


def test_s25_transfer_to_slow_follower_catches_it_up_first() -> None:
    """S25 (TestLeaderTransferToSlowFollower): 3 missed two writes; the leader first
    brings it up to date, only then hands over; no entry is lost."""
    cl = _leader_1()
    cl.cut(1, 3)
    replies = cl.write(1, b"a") + cl.write(1, b"b")
    cl.stabilize()
    assert all(r.ok for r in replies)
    cl.heal()
    transfer(cl, 3)
    cl.stabilize()
    assert not of_type(cl[1].commands, cmd.SendTransferLeader)  # 3 does not match yet
    cl.run_for(100)
    assert cl[3].state is ServerState.LEADER
    assert cl[1].state is ServerState.FOLLOWER
    assert cl[3].payloads()[-2:] == [b"a", b"b"]


def test_s25_transfer_after_snapshot() -> None:
    """S25 (TestLeaderTransferAfterSnapshot): the entries 3 needs were purged, so the
    leader first sends its snapshot, then the rest, then hands over."""
    cl = _leader_1(snapshot_policy=SnapshotPolicy.Never(), max_in_snapshot_log_to_keep=0)
    cl.isolate(3)
    for i in range(5):
        cl.write(1, b"w%d" % i)
    cl.stabilize()
    cl[1].handle(ev.TriggerSnapshot())
    cl[1].handle(ev.TriggerPurgeLog(cl[1].engine.committed.index))  # type: ignore[union-attr]
    assert cl[1].engine.log.purged is not None
    cl.heal()
    transfer(cl, 3)
    cl.run_for(200)
    assert [c.target for c in of_type(cl[1].commands, cmd.SendSnapshot)] == [3]
    assert cl[3].state is ServerState.LEADER
    assert cl[1].state is ServerState.FOLLOWER
    assert cl[3].payloads()[-5:] == [b"w%d" % i for i in range(5)]


# -- S26 -----------------------------------------------------------------------------------------


def test_s26_transfer_to_unreachable_node_is_abandoned_after_election_timeout() -> None:
    """S26 (TestLeaderTransferTimeout, ...IgnoreProposal): 3 is isolated; while the
    transfer is pending, writes are refused; after ``election_timeout_max`` it is
    abandoned and 1, still leader, accepts and commits writes again."""
    cl = _leader_1()
    cl.isolate(3)
    transfer(cl, 3)
    assert _write_refused(cl)
    cl.run_for(cl.config.election_timeout_max - 20)
    assert _write_refused(cl)
    cl.run_for(40)
    assert cl[1].state is ServerState.LEADER
    [reply] = cl.write(1, b"x")
    cl.stabilize()
    assert reply.ok


def test_s26_transfer_to_self_or_unknown_node_is_a_no_op() -> None:
    """S26 (TestLeaderTransferToSelf, ...ToNonExistingNode): nothing starts, writes go on."""
    cl = _leader_1()
    for target in (1, 9):
        transfer(cl, target)
        assert not _write_refused(cl)
        assert cl[1].engine.leader.transfer_to is None  # type: ignore[union-attr]
    cl.stabilize()
    assert cl[1].state is ServerState.LEADER
    assert not of_type(cl[1].commands, cmd.SendTransferLeader)


def test_s26_second_transfer_to_same_node_does_not_extend_the_deadline() -> None:
    """S26 (TestLeaderTransferSecondTransferToSameNode): repeating the request halfway
    through does not restart the clock: the transfer is still abandoned one
    ``election_timeout_max`` after the first request."""
    cl = _leader_1()
    cl.isolate(3)
    transfer(cl, 3)
    half = cl.config.election_timeout_max // 2
    cl.run_for(half)
    transfer(cl, 3)
    cl.run_for(half + 10)
    assert not _write_refused(cl)


def test_s26_removing_the_target_aborts_the_transfer() -> None:
    """S26 (TestLeaderTransferRemoveNode): the pending target 3 is removed from the
    cluster; the transfer ends with it and writes are accepted at once."""
    cl = _leader_1()
    cl.isolate(3)
    transfer(cl, 3)
    change = Reply()
    cl[1].handle(ev.ChangeMembership(ChangeMembers.RemoveVoters({3}), False, change))
    cl.stabilize()
    assert change.ok
    assert cl[1].state is ServerState.LEADER
    assert not _write_refused(cl)


def test_s26_higher_term_vote_ends_the_transfer() -> None:
    """S26 (TestLeaderTransferReceiveHigherTermVote), lease off: while the transfer to
    the isolated 3 is pending, 2 campaigns at a higher term; 1 steps down (§5.1),
    the transfer is gone and 2 leads."""
    cl = _leader_1(enable_leader_lease=False)
    cl.isolate(3)
    transfer(cl, 3)
    campaign(cl, 2)
    cl.stabilize()
    assert cl[2].state is ServerState.LEADER
    assert cl[1].state is ServerState.FOLLOWER and cl[1].engine.leader is None
    assert cl[1].engine.current_leader == 2
