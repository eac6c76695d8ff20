"""Entries larger than the leader's running average: AppendEntries still fit a frame.

The engine sizes requests by the average payload (`Config.max_payload_entries`,
capped at half a frame); `raftx.runtime.replication.fit_frame` cuts a request that
overshoots to the prefix that fits, and the follower's partial answer makes the
engine resend the rest. A payload no frame can carry is refused at `client_write`.
"""

from __future__ import annotations

import pytest
from raftkit import WAIT, Cluster, fast_config

from raftx.errors import ClientWriteError
from raftx.runtime.replication import FRAME_SLACK, fit_frame
from raftx.storage import EncodedBatch
from raftx.types import ClientWriteResponse, Entry, LogId

pytestmark = pytest.mark.timeout(60)


def test_fit_frame_keeps_the_longest_prefix_that_fits() -> None:
    sizes = [10, 3000, 10, 5000, 10]
    batch = EncodedBatch.from_entries([Entry(LogId(1, 7 + i), b"x" * n) for i, n in enumerate(sizes)])
    ends = [batch.offsets[i] + batch.lengths[i] for i in range(len(sizes))]
    assert fit_frame(batch, len(batch.data) + FRAME_SLACK) is batch
    for frame in range(FRAME_SLACK + 1, len(batch.data) + FRAME_SLACK, 97):
        got = fit_frame(batch, frame)
        fitting = sum(1 for e in ends if e <= frame - FRAME_SLACK)
        assert len(got) == max(1, fitting) and got.first_index == 7
        assert got.data == batch.data[: ends[len(got) - 1]]


async def test_a_batch_of_large_entries_reaches_every_node_over_tcp() -> None:
    c = Cluster("tcp", config=fast_config(max_frame_bytes=256 * 1024, max_payload_entries=300))
    try:
        leader = await c.initialize([1, 2, 3])
        for k in range(20):  # the leader learns a small average entry
            await leader.client_write(b"s%d" % k)
        big = [bytes([k]) * 100_000 for k in range(5)]  # 500 KB in one batch; a frame holds 256 KB
        results = await leader.client_write_many(big)
        assert all(isinstance(r, ClientWriteResponse) for r in results), results
        last = results[-1].log_id.index
        for r in c.nodes.values():
            await r.wait(WAIT).applied_index_at_least(last, "the large entries applied")
            assert [c.sms[r.id].data[res.log_id.index] for res in results] == big
    finally:
        await c.close()


async def test_a_payload_larger_than_a_frame_is_refused(cluster: Cluster) -> None:
    leader = await cluster.initialize([1, 2, 3])
    limit = cluster.config.max_payload_bytes
    with pytest.raises(ClientWriteError):
        await leader.client_write(b"x" * (limit + 1))
    assert (await leader.client_write(b"fine")).data == b"fine"
