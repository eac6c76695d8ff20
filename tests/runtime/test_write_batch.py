"""`Raft.client_write_many` as one queued batch (`raftx.runtime.write_batch`):
one outcome per input in order, batches longer than ``api_batch_capacity``,
errors per write, interleaving with single writes, and stop semantics."""

from __future__ import annotations

import asyncio

import pytest
from raftkit import WAIT, Cluster, fast_config

from raftx.errors import Fatal, ForwardToLeader

pytestmark = pytest.mark.timeout(60)


async def test_a_batch_longer_than_the_batch_capacity_is_applied_in_order() -> None:
    c = Cluster("mem", config=fast_config(api_batch_capacity=7))
    try:
        leader = await c.initialize([1, 2, 3])
        payloads = [b"v%d" % k for k in range(50)]
        results = await leader.client_write_many(payloads)
        assert [r.data for r in results] == payloads
        indexes = [r.log_id.index for r in results]
        assert indexes == list(range(indexes[0], indexes[0] + 50))
        for r in c.nodes.values():
            await r.wait(WAIT).applied_index_at_least(indexes[-1], "batch applied")
            assert [c.sms[r.id].data[i] for i in indexes] == payloads
    finally:
        await c.close()


async def test_batches_and_single_writes_interleave_in_submission_order(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    single_a = asyncio.ensure_future(leader.client_write(b"s1"))
    batch = asyncio.ensure_future(leader.client_write_many([b"b1", b"b2", b"b3"]))
    single_b = asyncio.ensure_future(leader.client_write(b"s2"))
    a, many, b = await asyncio.gather(single_a, batch, single_b)
    assert [m.data for m in many] == [b"b1", b"b2", b"b3"]
    order = [a.log_id.index] + [m.log_id.index for m in many] + [b.log_id.index]
    assert order == sorted(order) and len(set(order)) == 5


async def test_an_empty_batch_returns_an_empty_list(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    assert await leader.client_write_many([]) == []


async def test_a_batch_on_a_follower_returns_forward_to_leader_per_write(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    follower = next(r for r in cluster.nodes.values() if r is not leader)
    results = await follower.client_write_many([b"x", b"y"])
    assert len(results) == 2
    assert all(isinstance(r, ForwardToLeader) and r.leader_id == leader.id for r in results)


async def test_a_batch_queued_at_shutdown_gets_fatal_per_write_or_a_response(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    batch = asyncio.ensure_future(leader.client_write_many([b"p%d" % k for k in range(20)]))
    await asyncio.sleep(0)  # queued in the core, not necessarily proposed yet
    await asyncio.wait_for(leader.shutdown(), WAIT)
    results = await asyncio.wait_for(batch, WAIT)
    assert len(results) == 20
    assert all(isinstance(r, Fatal) or r.data == b"p%d" % k for k, r in enumerate(results))
    with pytest.raises(Fatal):
        await leader.client_write_many([b"late"])


async def test_a_cancelled_batch_leaves_the_node_writing(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    batch = asyncio.ensure_future(leader.client_write_many([b"c%d" % k for k in range(10)]))
    await asyncio.sleep(0)
    batch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await batch
    resp = await leader.client_write(b"after")
    assert resp.data == b"after"
