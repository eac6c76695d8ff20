"""A follower caught up by snapshots keeps following (issue 10, bug 1; §7).

The leader snapshots often (``SnapshotPolicy.LogsSinceLast``) and purges past a
follower cut off from it; after the partition heals the follower installs one
snapshot (or two in quick succession) and must then accept the next
AppendEntries: after an install the log continues at ``snapshot.last + 1``, so the
storage worker may not leave the install's purge behind the appends that follow
it. Runs with both log stores (memory and segmented files).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from raftkit import WAIT, Cluster, fast_config

from raftx import SnapshotPolicy
from raftx.raft import Raft

pytestmark = pytest.mark.timeout(120)


def frequent_snapshots() -> object:
    # heartbeat 100 ms: the storage worker runs deferred purges at most once a second
    return fast_config(snapshot_policy=SnapshotPolicy.LogsSinceLast(200), max_in_snapshot_log_to_keep=20,
                       snapshot_max_chunk_size=4096, heartbeat_interval=100, election_timeout_min=500,
                       election_timeout_max=1000)


async def _write(leader: Raft, n: int, tag: bytes) -> int:
    """Write ``n`` entries in batches; the index of the last one."""
    last = -1
    for start in range(0, n, 250):
        out = await leader.client_write_many([tag + b"-%05d" % k for k in range(start, min(n, start + 250))])
        for r in out:
            assert not isinstance(r, BaseException), r
            last = max(last, r.log_id.index)
    return last


async def _leave_behind(c: Cluster, follower: int, n: int, tag: bytes) -> None:
    """Cut ``follower`` off, write ``n`` entries and wait until the leader purged past it."""
    c.router.isolate(follower)
    leader = await c.leader([i for i in c.nodes if i != follower])
    behind = c.nodes[follower].metrics().borrow().last_log_index or 0
    await _write(leader, n, tag)
    await leader.wait(WAIT).metrics(lambda m: m.purged is not None and m.purged.index > behind,
                                    f"leader purged past {behind}")


async def _caught_up(c: Cluster, follower: int) -> None:
    """The follower applies a write made after the heal and still runs."""
    node = c.nodes[follower]
    leader = await c.leader()  # the healed follower may have forced an election
    resp = await leader.client_write(b"after-heal")
    await node.wait(WAIT).applied_index_at_least(resp.log_id.index, "follower caught up after the snapshot")
    assert node.metrics().borrow().running_state is None
    assert c.sms[follower].data == c.sms[leader.id].data


async def _purge_on(node: Raft) -> None:
    """Snapshot and purge ``node``'s own log now (its policy would do the same)."""
    await node.trigger().snapshot()
    m = await node.wait(WAIT).metrics(lambda x: x.snapshot is not None and x.snapshot == x.last_applied, "snapshot")
    await node.trigger().purge_log(m.snapshot.index)
    await node.wait(WAIT).purged(m.snapshot, "own log purged")


@pytest.fixture(params=[False, True], ids=["MemLogStore", "SegmentedLogStore"])
async def three(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Cluster, int]]:
    """A 3-node cluster over a MemRouter with the given log store, and one follower's id."""
    c = Cluster("mem", durable=request.param, tmp=tmp_path, config=frequent_snapshots())
    try:
        leader = await c.initialize([1, 2, 3])
        yield c, next(i for i in c.nodes if i != leader.id)
    finally:
        await c.close()


async def test_follower_keeps_following_after_snapshot_catch_up(three: tuple[Cluster, int]) -> None:
    c, follower = three
    leader = await c.leader()
    await _write(leader, 300, b"a")
    await c.nodes[follower].wait(WAIT).applied_index_at_least(leader.metrics().borrow().last_applied.index, "")
    await _purge_on(c.nodes[follower])  # a purge just ran: the install's purge would wait
    await _leave_behind(c, follower, 3000, b"b")
    c.router.heal()
    await _caught_up(c, follower)


async def test_two_snapshot_installs_in_quick_succession(three: tuple[Cluster, int]) -> None:
    c, follower = three
    node = c.nodes[follower]
    await _leave_behind(c, follower, 1500, b"a")
    c.router.heal()
    first = await node.wait(WAIT).metrics(lambda m: m.snapshot is not None and m.snapshot.index > 1000,
                                          "first snapshot installed")
    # cut it off again at once: the second install comes while purges are still throttled
    await _leave_behind(c, follower, 300, b"b")
    c.router.heal()
    await node.wait(WAIT).metrics(lambda m: m.snapshot is not None and m.snapshot.index > first.snapshot.index,
                                  "second snapshot installed")
    await _caught_up(c, follower)
