"""``Config.enable_leader_restore`` end to end: a durable sole leader restarts as leader of its term."""

from __future__ import annotations

from pathlib import Path

from raftkit import WAIT, Cluster, fast_config

from raftx.types import ServerState


async def test_a_restarted_sole_leader_serves_its_term_again(tmp_path: Path) -> None:
    c = Cluster("mem", durable=True, tmp=tmp_path, config=fast_config(enable_leader_restore=True))
    try:
        leader = await c.initialize([1])
        await leader.client_write(b"before")
        term = leader.metrics().borrow().current_term
        await c.stop(1)
        raft = await c.start(1)
        m = raft.metrics().borrow()
        assert m.state == ServerState.LEADER and m.current_term == term  # no election
        await raft.client_write(b"after")
        await raft.ensure_linearizable()
        await raft.wait(WAIT).state(ServerState.LEADER, "still leading")
    finally:
        await c.close()
