"""A follower whose state machine takes longer to install a snapshot than the
per-chunk timeout still catches up (§7).

The answer to a snapshot's last chunk waits for the follower's install, which for a
large state takes seconds (1,000,000 KV keys: 2-4 s), while every other chunk is
answered on receipt. With one deadline for every chunk the leader gave up on the
last one, sent the whole snapshot again, and a learner never caught up (found by
``raftx bench --sweep``: 168 restarts in 20 s). The last chunk waits up to
``Config.install_snapshot_wait``.
"""

from __future__ import annotations

import asyncio
from typing import BinaryIO

import pytest
from raftkit import WAIT, Cluster, fast_config

from raftx import SnapshotPolicy
from raftx.storage import MemStateMachine
from raftx.types import SnapshotMeta

pytestmark = pytest.mark.timeout(120)

INSTALL_S = 1.5  # longer than the leader's per-chunk deadline (election_timeout_max: 0.5 s)


class SlowInstall(MemStateMachine):
    """A state machine whose install takes ``INSTALL_S`` (a large state's load)."""

    def __init__(self) -> None:
        super().__init__()
        self.installs: list[SnapshotMeta] = []
        self.transfers = 0  # snapshots the leader began to send here

    async def begin_receiving_snapshot(self) -> BinaryIO:
        self.transfers += 1
        return await super().begin_receiving_snapshot()

    async def install_snapshot(self, meta: SnapshotMeta, snapshot: BinaryIO) -> None:
        self.installs.append(meta)
        await asyncio.sleep(INSTALL_S)
        await super().install_snapshot(meta, snapshot)


@pytest.mark.parametrize("transport", ["mem", "tcp"])
async def test_a_learner_with_a_slow_install_catches_up_by_one_snapshot(transport: str) -> None:
    sms: dict[int, SlowInstall] = {}

    def factory(i: int) -> SlowInstall:
        sms[i] = SlowInstall()
        return sms[i]

    cfg = fast_config(snapshot_policy=SnapshotPolicy.LogsSinceLast(100), max_in_snapshot_log_to_keep=0)
    c = Cluster(transport, config=cfg, sm_factory=factory)
    try:
        leader = await c.initialize([1])
        for k in range(300):
            await leader.client_write(b"v%03d" % k)
        await leader.wait(WAIT).metrics(lambda m: m.purged is not None and m.purged.index > 100, "leader purged")
        await c.start(2)
        await leader.add_learner(2, c.addr(2), blocking=False)
        last = leader.metrics().borrow().last_log_index
        await c.nodes[2].wait(WAIT * 2).applied_index_at_least(last, "learner caught up")
        assert len(sms[2].installs) == 1
        assert sms[2].transfers == 1, f"the leader sent the snapshot {sms[2].transfers} times"
        assert c.sms[2].data == c.sms[1].data
    finally:
        await c.close()
