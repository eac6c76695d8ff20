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


# -- the pieces: slot runs, chains, the engine's responder queue -----------------------------


async def test_slot_runs_and_chains_read_and_slice_like_lists() -> None:
    from raftx.runtime.write_batch import ResponderChain, SlotRun, WriteBatch

    batch = WriteBatch([b"a", b"b", b"c", b"d"], asyncio.get_running_loop().create_future())
    run = SlotRun(batch, 1, 4)
    assert len(run) == 3 and [s.i for s in run] == [1, 2, 3] and run[-1].i == 3
    assert (run[1:].start, run[1:].stop, len(run[2:1])) == (2, 4, 0)
    futs = ["f1", "f2"]
    chain = ResponderChain([futs, run, []])
    flat = ["f1", "f2", 1, 2, 3]

    def view(seq):
        return [x if isinstance(x, str) else x.i for x in seq]

    assert len(chain) == 5 and view(chain) == flat and [view([chain[i]]) for i in range(5)] == [[x] for x in flat]
    for lo in range(6):
        for hi in range(6):
            assert view(chain[lo:hi]) == flat[lo:hi]
    for bad in (5, -6):
        with pytest.raises(IndexError):
            chain[bad]


async def test_settle_run_resolves_once_and_respects_earlier_outcomes() -> None:
    from raftx.runtime.write_batch import WriteBatch

    fut = asyncio.get_running_loop().create_future()
    batch = WriteBatch([b"a", b"b", b"c", b"d"], fut)
    batch.settle_run(0, ["r0", "r1"])
    assert not fut.done() and batch.remaining == 2
    batch.settle(3, "early")
    batch.settle_run(2, ["r2", "late"])  # write 3 already has its outcome: kept
    assert fut.done() and fut.result() == ["r0", "r1", "r2", "early"]


def test_responder_queue_hands_out_runs_split_at_the_index() -> None:
    from raftx.engine.state import ResponderQueue, each_responder

    q = ResponderQueue()
    q.push(5, ["a", None, "c"])
    q.push(8, ("d", "e"))
    assert q.take_upto(6) == [(5, ["a", None])]
    assert list(each_responder(q.take_upto(8))) == [(7, "c"), (8, "d")]
    q.push(10, ["f", "g", "h"])
    assert q.take_from(11) == [(11, ["g", "h"])]
    assert list(each_responder(q.take_from(0))) == [(9, "e"), (10, "f")]
    assert len(q) == 0 and q.take_upto(100) == []
