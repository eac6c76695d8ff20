"""ReadIndex on a slow but healthy link, end to end over a delaying `MemRouter` (issue 16).

Every leader -> follower message is delayed 0.2 s (ten heartbeat intervals) while
reads arrive every heartbeat interval for longer than ``election_timeout_max``: every
read must succeed. Before the fix each of them failed with `QuorumNotEnough` (the
answers to heartbeats beyond the eight remembered per follower were ignored).
"""

from __future__ import annotations

import asyncio

from raftkit import Cluster, fast_config

from raftx.errors import RaftError


async def test_reads_succeed_when_the_round_trip_spans_many_heartbeats() -> None:
    config = fast_config(heartbeat_interval=20, election_timeout_min=500, election_timeout_max=1000)
    c = Cluster("mem", config=config)
    try:
        leader = await c.initialize([1, 2, 3])
        lid = leader.metrics().borrow().id
        for f in (1, 2, 3):
            if f != lid:
                c.router.set_link(lid, f, delay=0.2)
        await leader.ensure_linearizable()  # warmed up on the slow link

        async def read() -> object:
            try:
                await leader.ensure_linearizable()
                return None
            except RaftError as exc:
                return exc

        tasks = []
        for _ in range(60):  # 1.2 s of reads, 20 ms apart
            tasks.append(asyncio.create_task(read()))
            await asyncio.sleep(0.02)
        errors = [e for e in await asyncio.gather(*tasks) if e is not None]
        assert errors == []
        assert leader.metrics().borrow().current_leader == lid
    finally:
        await c.close()
