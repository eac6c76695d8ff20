"""Membership changes through the public API (thesis §4.3) and leadership transfer (§3.10).

Grow 3 -> 5 with add_learner + change_membership, shrink 5 -> 3, remove the leader,
the LearnerNotFound / InProgress errors, and trigger().transfer_leader.
"""

from __future__ import annotations

import asyncio

import pytest
from raftkit import WAIT, Cluster

from raftx import ServerState
from raftx.errors import ChangeMembershipError, ForwardToLeader, LearnerNotFound
from raftx.types import ChangeMembers

pytestmark = pytest.mark.timeout(60)


async def _grow_to_five(c: Cluster):
    leader = await c.initialize([1, 2, 3])
    for k in range(10):
        await leader.client_write(b"pre%d" % k)
    await c.start_many([4, 5])
    for i in (4, 5):
        resp = await leader.add_learner(i, c.addr(i), blocking=True)
        assert resp.membership is not None and i in resp.membership.learner_ids()
        m = leader.metrics().borrow()
        assert m.replication is not None and m.replication[i].index >= resp.log_id.index
    assert c.nodes[4].metrics().borrow().state == ServerState.LEARNER
    resp = await leader.change_membership({1, 2, 3, 4, 5}, retain=False)
    assert resp.membership is not None and resp.membership.voter_ids() == {1, 2, 3, 4, 5}
    for r in c.nodes.values():
        await r.wait(WAIT).members({1, 2, 3, 4, 5}, "five voters")
    return leader


async def test_grow_three_to_five(cluster: Cluster) -> None:
    leader = await _grow_to_five(cluster)
    resp = await leader.client_write(b"with five")
    for i in (4, 5):
        await cluster.nodes[i].wait(WAIT).applied_index_at_least(resp.log_id.index, "new voter applies")
        assert cluster.sms[i].data[resp.log_id.index] == b"with five"
        assert cluster.sms[i].data == cluster.sms[leader.id].data  # learned the whole history too
    assert cluster.nodes[5].metrics().borrow().state == ServerState.FOLLOWER


async def test_shrink_five_to_three_and_removed_nodes_stop_voting(cluster: Cluster) -> None:
    leader = await _grow_to_five(cluster)
    keep = [leader.id, *sorted({1, 2, 3, 4, 5} - {leader.id})[:2]]
    resp = await leader.change_membership(set(keep), retain=False)
    assert resp.membership.voter_ids() == set(keep)
    assert resp.membership.learner_ids() == set()
    for i in keep:
        await cluster.nodes[i].wait(WAIT).members(keep, "three voters")
    # with two of the five gone, the three remaining still commit
    for i in set(cluster.nodes) - set(keep):
        await cluster.stop(i)
    resp = await leader.client_write(b"three again")
    for i in keep:
        await cluster.nodes[i].wait(WAIT).applied_index_at_least(resp.log_id.index, "applied")


async def test_remove_the_leader(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    await leader.client_write(b"before")
    rest = sorted(set(cluster.nodes) - {leader.id})
    await leader.change_membership(set(rest), retain=False)
    new_leader = await cluster.leader(among=rest)
    assert new_leader.id in rest
    # the removed leader handed over (removed_leader_step_down) and steps down by itself
    await leader.wait(WAIT).metrics(lambda m: m.state != ServerState.LEADER, "the removed leader steps down")
    resp = await new_leader.client_write(b"after")
    for i in rest:
        await cluster.nodes[i].wait(WAIT).applied_index_at_least(resp.log_id.index, "applied")
        await cluster.nodes[i].wait(WAIT).members(rest, "two voters")


async def test_change_membership_errors(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    with pytest.raises(LearnerNotFound):
        await leader.change_membership({1, 2, 3, 9})
    follower = next(r for r in cluster.nodes.values() if r is not leader)
    with pytest.raises(ForwardToLeader):
        await follower.change_membership({1, 2})
    with pytest.raises(ChangeMembershipError):
        await leader.change_membership(set())
    # retain keeps removed voters as learners
    victim = next(i for i in (1, 2, 3) if i != leader.id)
    resp = await leader.change_membership(ChangeMembers.RemoveVoters([victim]), retain=True)
    assert victim in resp.membership.learner_ids()
    await cluster.nodes[victim].wait(WAIT).state(ServerState.LEARNER, "demoted to learner")


async def test_transfer_leadership(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    await leader.client_write(b"x")
    target = next(i for i in cluster.nodes if i != leader.id)
    await leader.trigger().transfer_leader(target)
    for r in cluster.nodes.values():
        await r.wait(WAIT).current_leader(target, "transferred")
    resp = await cluster.nodes[target].client_write(b"from the new leader")
    assert resp.data == b"from the new leader"
    assert leader.metrics().borrow().state == ServerState.FOLLOWER


async def test_add_learner_non_blocking_returns_before_catch_up(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    resp = await leader.add_learner(4, cluster.addr(4), blocking=False)  # node 4 is not even running
    assert 4 in resp.membership.learner_ids()
    with pytest.raises(asyncio.TimeoutError):
        async with asyncio.timeout(0.3):
            await leader.add_learner(4, cluster.addr(4), blocking=True)
    await cluster.start(4)
    await leader.add_learner(4, cluster.addr(4), blocking=True)
