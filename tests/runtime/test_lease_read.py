"""`ReadPolicy.LEASE_READ` end to end over a `MemRouter` (the bound and its safety: `raftx.engine.reads`)."""

from __future__ import annotations

import pytest
from raftkit import Cluster, fast_config

from raftx import ReadPolicy
from raftx.errors import ForwardToLeader


async def test_a_lease_read_sends_nothing_while_the_lease_holds() -> None:
    # long timeouts: the lease (election_timeout_min - heartbeat - 10%) outlasts a loaded box's pauses
    c = Cluster("mem", config=fast_config(election_timeout_min=4000, election_timeout_max=8000))
    try:
        leader = await c.initialize([1, 2, 3])
        await leader.client_write(b"x")
        leader.runtime_config().heartbeat(False)
        await leader.ensure_linearizable()  # a quorum round just now: the lease is fresh
        sent = c.router.stats.sent
        for _ in range(20):
            read_log_id = await leader.ensure_linearizable(ReadPolicy.LEASE_READ)
            assert read_log_id is not None and read_log_id == leader.metrics().borrow().last_applied
        assert c.router.stats.sent == sent  # no round trip
        await leader.ensure_linearizable(ReadPolicy.READ_INDEX)
        assert c.router.stats.sent > sent
    finally:
        await c.close()


async def test_lease_reads_on_a_follower_forward_and_bad_policies_are_refused() -> None:
    c = Cluster("mem")
    try:
        leader = await c.initialize([1, 2, 3])
        lid = leader.metrics().borrow().id
        follower = c.nodes[next(i for i in (1, 2, 3) if i != lid)]
        with pytest.raises(ForwardToLeader):
            await follower.get_read_log_id(ReadPolicy.LEASE_READ)
        with pytest.raises(TypeError):
            await leader.ensure_linearizable("lease")  # type: ignore[arg-type]
    finally:
        await c.close()
