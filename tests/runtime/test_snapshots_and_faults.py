"""Snapshots over the wire (§7) and storage failures (DESIGN §2 rule 7).

* a follower that was cut off while the leader purged its log is caught up by the
  leader's snapshot, streamed in many chunks (MemRouter and TCP);
* ``install_full_snapshot`` / ``begin_receiving_snapshot`` for an application that
  moves snapshots itself; a damaged chunked transfer installs nothing;
* an fsync failure stops the node: pending and later calls raise ``Fatal`` and the
  metrics' ``running_state`` names the storage error.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from raftkit import WAIT, Cluster, fast_config

from raftx import ServerState, SnapshotPolicy
from raftx.errors import Fatal, ProtocolError, StorageError
from raftx.messages import InstallSnapshotRequest
from raftx.network import MemRouter
from raftx.network.raft_rpc import MemNetworkFactory
from raftx.raft import Raft
from raftx.storage import MemLogStore, MemStateMachine, SegmentedLogStore
from raftx.testing import FaultInjector
from raftx.types import Snapshot

pytestmark = pytest.mark.timeout(60)


def snapshot_config() -> object:
    # manual snapshots, purge everything they cover, and small chunks so a transfer has many
    return fast_config(snapshot_policy=SnapshotPolicy.Never(), max_in_snapshot_log_to_keep=0,
                       snapshot_max_chunk_size=512)


async def _purge_behind_lagging_follower(c: Cluster) -> tuple[Raft, int]:
    leader = await c.initialize([1, 2, 3])
    lagging = next(i for i in c.nodes if i != leader.id)
    if c.transport == "mem":
        c.router.isolate(lagging)
    else:
        await c.stop(lagging)
    for k in range(60):
        await leader.client_write(b"entry-%03d-" % k + b"z" * 40)
    await leader.trigger().snapshot()
    m = await leader.wait(WAIT).metrics(lambda x: x.snapshot is not None and x.snapshot == x.last_applied,
                                        "snapshot of everything applied")
    await leader.trigger().purge_log(m.snapshot.index)
    await leader.wait(WAIT).purged(m.snapshot, "log purged up to the snapshot")
    return leader, lagging


@pytest.mark.parametrize("transport", ["mem", "tcp"])
async def test_lagging_follower_is_caught_up_by_snapshot(transport: str, tmp_path: Path) -> None:
    c = Cluster(transport, durable=transport == "tcp", tmp=tmp_path, config=snapshot_config())
    try:
        leader, lagging = await _purge_behind_lagging_follower(c)
        snap_index = leader.metrics().borrow().snapshot.index
        if transport == "mem":
            c.router.heal()
        else:
            await c.start(lagging)
        node = c.nodes[lagging]
        m = await node.wait(WAIT).metrics(lambda x: x.snapshot is not None and x.snapshot.index >= snap_index,
                                          "snapshot installed on the lagging follower")
        assert m.purged is not None and m.purged.index >= snap_index
        resp = await leader.client_write(b"after-snapshot")
        await node.wait(WAIT).applied_index_at_least(resp.log_id.index, "replicating after the snapshot")
        assert c.sms[lagging].data == c.sms[leader.id].data
        assert c.sms[lagging].data[resp.log_id.index] == b"after-snapshot"
    finally:
        await c.close()


async def _snapshot_bytes(leader: Raft) -> tuple[Snapshot, bytes]:
    """Build a snapshot of everything applied on ``leader``; return it and its bytes."""
    await leader.trigger().snapshot()
    await leader.wait(WAIT).metrics(lambda x: x.snapshot == x.last_applied, "snapshot")
    snap = await leader.get_snapshot()
    assert snap is not None
    data = snap.snapshot.read()
    snap.snapshot.close()
    return snap, data


async def test_install_full_snapshot_from_an_application_transport() -> None:
    c = Cluster("mem", config=snapshot_config())
    try:
        leader = await c.initialize([1, 2, 3])
        for k in range(20):
            await leader.client_write(b"k%d" % k)
        snap, data = await _snapshot_bytes(leader)
        # a separate node, not wired to the cluster: the application moves the bytes itself
        other = await Raft.new(9, snapshot_config(), MemNetworkFactory(MemRouter()), MemLogStore(),
                               sm := MemStateMachine())
        try:
            f = await other.begin_receiving_snapshot()
            f.write(data)
            resp = await other.install_full_snapshot(leader.metrics().borrow().vote, Snapshot(snap.meta, f))
            assert resp.vote == leader.metrics().borrow().vote
            m = await other.wait(WAIT).metrics(lambda x: x.snapshot == snap.meta.last_log_id, "installed")
            assert m.last_applied == snap.meta.last_log_id
            assert sm.data == {i: v for i, v in c.sms[leader.id].data.items() if i <= snap.meta.last_log_id.index}
            assert m.membership.voter_ids() == {1, 2, 3}
        finally:
            await other.shutdown()
    finally:
        await c.close()


async def test_damaged_chunked_transfer_installs_nothing() -> None:
    c = Cluster("mem", config=snapshot_config())
    try:
        leader = await c.initialize([1, 2, 3])
        await leader.client_write(b"x")
        snap, data = await _snapshot_bytes(leader)
        other = await Raft.new(9, snapshot_config(), MemNetworkFactory(MemRouter()), MemLogStore(), MemStateMachine())
        try:
            vote = leader.metrics().borrow().vote
            half = len(data) // 2
            await other.receive_snapshot_chunk(InstallSnapshotRequest(vote, snap.meta, 0, data[:half], False))
            # a gap in the offsets
            with pytest.raises(ProtocolError):
                await other.receive_snapshot_chunk(InstallSnapshotRequest(vote, snap.meta, half + 1, b"x", True))
            # a full transfer whose checksum does not match what was received
            import zlib
            await other.receive_snapshot_chunk(InstallSnapshotRequest(vote, snap.meta, 0, data[:half], False))
            with pytest.raises(ProtocolError, match="checksum"):
                await other.receive_snapshot_chunk(
                    InstallSnapshotRequest(vote, snap.meta, half, data[half:], True), zlib.crc32(data) ^ 1)
            assert other.metrics().borrow().snapshot is None
            assert other.metrics().borrow().last_applied is None
            # the intact transfer installs (through the deprecated openraft v1 entry point too)
            await other.receive_snapshot_chunk(InstallSnapshotRequest(vote, snap.meta, 0, data[:half], False))
            with pytest.warns(DeprecationWarning):
                resp = await other.install_snapshot(InstallSnapshotRequest(vote, snap.meta, half, data[half:], True))
            assert resp.vote == vote
            await other.wait(WAIT).metrics(lambda x: x.snapshot == snap.meta.last_log_id, "installed")
        finally:
            await other.shutdown()
    finally:
        await c.close()


async def test_fsync_failure_is_fatal_and_visible_in_metrics(tmp_path: Path) -> None:
    cfg = fast_config()
    injector = FaultInjector()
    store = await SegmentedLogStore.open(tmp_path / "log", cluster_name=cfg.cluster_name, node_id=1, io=injector)
    raft = await Raft.new(1, cfg, MemNetworkFactory(MemRouter()), store, MemStateMachine())
    try:
        await raft.initialize([1])
        await raft.wait(WAIT).state(ServerState.LEADER, "single node leads")
        await raft.client_write(b"durable")
        injector.fail_next("fdatasync", errno.EIO)
        with pytest.raises(Fatal) as info:
            await raft.client_write(b"never acknowledged")
        assert isinstance(info.value.cause, StorageError)
        m = await raft.wait(WAIT).state(ServerState.SHUTDOWN, "stopped by the storage error")
        assert isinstance(m.running_state, Fatal)
        assert isinstance(m.running_state.cause, StorageError)
        with pytest.raises(Fatal):
            await raft.client_write(b"later")
        with pytest.raises(Fatal):
            await raft.ensure_linearizable()
    finally:
        await raft.shutdown()
        await store.close()
