"""A snapshot built before anything was applied does not make a node "initialized".

Found by the simulation (seed 63 of the production-runtime simulation): ``trigger().
snapshot()`` on a pristine node stored a snapshot covering no entry; after a restart
`restore_state` adopted it, the node was no longer pristine and refused ``initialize``
with ``NotAllowed`` forever, so the cluster never formed.
"""

from __future__ import annotations

from pathlib import Path

from raftx import Config, Raft
from raftx.kv.state_machine import KVStateMachine
from raftx.network import MemRouter
from raftx.network.raft_rpc import MemNetworkFactory
from raftx.storage import MemLogStore


async def test_an_empty_snapshot_does_not_block_initialize(tmp_path: Path) -> None:
    router, store = MemRouter(), MemLogStore()
    raft = await Raft.new(1, Config(), MemNetworkFactory(router, 1), store, KVStateMachine(tmp_path))
    await raft.trigger().snapshot()
    snap = await raft.get_snapshot()  # queued behind the build on the state-machine worker
    assert snap is not None and snap.meta.last_log_id is None
    snap.snapshot.close()
    await raft.shutdown()

    raft = await Raft.new(1, Config(), MemNetworkFactory(router, 1), store, KVStateMachine(tmp_path))
    try:
        assert not await raft.is_initialized()
        await raft.initialize([1])  # NotAllowed before the fix
        await raft.wait(5).applied_index_at_least(0, "initialized")
    finally:
        await raft.shutdown()
