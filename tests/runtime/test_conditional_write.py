"""Conditional writes (openraft ``write().with_leader``): refused once the leader changed."""

from __future__ import annotations

import pytest
from raftkit import WAIT, Cluster

from raftx.errors import ForwardToLeader
from raftx.types import LeaderId, ServerState, Vote


async def test_a_write_with_the_current_leader_is_appended() -> None:
    c = Cluster("mem")
    try:
        leader = await c.initialize([1, 2, 3])
        lid = leader.metrics().borrow().vote.leader_id
        resp = await leader.write(b"x").with_leader(lid)
        assert resp.log_id.term == lid.term
        plain = await leader.write(b"y")
        assert plain.log_id.index == resp.log_id.index + 1
    finally:
        await c.close()


async def test_a_write_with_an_old_leader_is_refused_and_changes_nothing() -> None:
    c = Cluster("mem")
    try:
        leader = await c.initialize([1, 2, 3])
        old = leader.metrics().borrow().vote
        old_id = leader.metrics().borrow().id
        target = next(i for i in (1, 2, 3) if i != old_id)
        await leader.trigger().transfer_leader(target)
        new = await c.nodes[target].wait(WAIT).state(ServerState.LEADER, "transfer done")
        assert new.current_term > old.term
        last = new.last_log_index
        with pytest.raises(ForwardToLeader) as info:
            await c.nodes[target].write(b"x").with_leader(old.leader_id)  # the leader changed
        assert info.value.leader_id == target
        with pytest.raises(ForwardToLeader):
            await leader.write(b"x").with_leader(old)  # the old leader is a follower now
        assert c.nodes[target].metrics().borrow().last_log_index == last  # nothing appended
        fresh = c.nodes[target].metrics().borrow().vote
        await c.nodes[target].write(b"ok").with_leader(fresh)
    finally:
        await c.close()


async def test_with_leader_checks_its_argument() -> None:
    c = Cluster("mem")
    try:
        leader = await c.initialize([1])
        with pytest.raises(TypeError):
            leader.write(b"x").with_leader(Vote(1, 1))  # not committed
        with pytest.raises(TypeError):
            leader.write(b"x").with_leader(LeaderId(1))  # no node
        with pytest.raises(TypeError):
            leader.write(b"x").with_leader(7)  # type: ignore[arg-type]
    finally:
        await c.close()
