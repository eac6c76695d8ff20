"""``change_membership({id: node})`` adds voters through the learner stage (issue 16's trap:
openraft reads a map as "replace all voters" and skips the learner stage)."""

from __future__ import annotations

import pytest
from raftkit import WAIT, Cluster

from raftx.types import ChangeMembers, Membership


async def test_a_mapping_adds_voters_and_keeps_the_current_ones(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    for k in range(10):
        await leader.client_write(b"pre%d" % k)
    await cluster.start(4)
    resp = await leader.change_membership({4: cluster.addr(4)})
    assert resp.membership is not None and resp.membership.voter_ids() == {1, 2, 3, 4}
    for r in cluster.nodes.values():
        await r.wait(WAIT).members({1, 2, 3, 4}, "four voters")
    await cluster.nodes[4].wait(WAIT).applied_index_at_least(resp.log_id.index, "4 has the log")
    await leader.client_write(b"after")


async def test_an_empty_mapping_is_refused(cluster: Cluster) -> None:
    leader = await cluster.initialize([1])
    with pytest.raises(TypeError):
        await leader.change_membership({})


def test_coerce_reads_a_mapping_as_add_voters() -> None:
    from raftx.types import BasicNode

    m = Membership.new({1, 2, 3})
    change = ChangeMembers.coerce({4: BasicNode("n4")})
    assert change == ChangeMembers.AddVoters({4: BasicNode("n4")})
    assert change.apply(m).voter_ids() == {1, 2, 3, 4}
