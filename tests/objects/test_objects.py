"""raftx.objects: replicated objects over in-process clusters (MemRouter and TCP).

Every battery on a 3-node cluster, snapshot + restart, a dead lock holder losing its
lock after auto_unlock_time (log time), exactly-once across a leader killed
mid-call, TypeError before proposing, versioning, the threaded front end,
callbacks, and the storage conformance suite with ObjectStateMachine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from raftx import Config, Raft, ServerState
from raftx.network import MemRouter
from raftx.network.raft_rpc import MemNetworkFactory, serve_on_router
from raftx.objects import (
    ObjectStateMachine, ReplCounter, ReplDict, ReplicatedObject, ReplList, ReplLockManager, ReplPriorityQueue,
    ReplQueue, ReplSet, VersionError, replicated,
)
from raftx.storage import MemLogStore, SegmentedLogStore
from raftx.testing import run_log_store_suite
from raftx.types import Entry, EntryKind
from tests.runtime.raftkit import WAIT, Cluster, fast_config

pytestmark = pytest.mark.timeout(90)


def batteries() -> list[Any]:
    return [ReplCounter(), ReplDict(), ReplList(), ReplSet(), ReplQueue(), ReplPriorityQueue(),
            ReplLockManager(auto_unlock_time=0.8)]


class GatedObjects(ObjectStateMachine):
    """Once ``armed``, holds the apply of the next command until ``gate`` is set."""

    def __init__(self, objects: Sequence[Any]) -> None:
        super().__init__(objects)
        self.armed = False
        self.gate = asyncio.Event()
        self.holding = asyncio.Event()

    async def apply(self, entries: Sequence[Entry]) -> list[Any]:
        if self.armed and any(e.kind is EntryKind.NORMAL for e in entries):
            self.armed = False
            self.holding.set()
            await self.gate.wait()
        return await super().apply(entries)


class ObjCluster(Cluster):
    """A `Cluster` whose nodes run an `ObjectStateMachine` over fresh `batteries()`, bound at start."""

    def __init__(self, transport: str = "mem", make: Any = batteries, **kw: Any) -> None:
        super().__init__(transport, sm_factory=lambda i: GatedObjects(make()), **kw)

    async def start(self, i: int) -> Raft:
        raft = await super().start(i)
        self.sms[i].bind(raft)  # type: ignore[attr-defined]
        return raft

    async def stop(self, i: int) -> None:
        sm = self.sms[i]
        sm.gate.set()  # type: ignore[attr-defined]
        await sm.close()  # type: ignore[attr-defined]
        await super().stop(i)

    def objs(self, i: int) -> list[Any]:
        return self.sms[i].objects  # type: ignore[attr-defined, no-any-return]


@pytest.fixture(params=["mem", "tcp"])
async def ocluster(request: pytest.FixtureRequest) -> AsyncIterator[ObjCluster]:
    c = ObjCluster(request.param)
    yield c
    await c.close()


async def synced(c: ObjCluster) -> None:
    """Every node's objects reflect everything committed so far (a forwarded ReadIndex)."""
    for r in c.nodes.values():
        await r.ensure_linearizable(forward=True)


async def test_every_battery_on_a_three_node_cluster(ocluster: ObjCluster) -> None:
    c = ocluster
    leader = await c.initialize([1, 2, 3])
    f1, f2 = [i for i in c.nodes if i != leader.id]
    counter, d, lst, st, q, pq, locks = c.objs(f1)  # calls on a follower are forwarded
    assert await counter.inc() == 1
    assert await counter.inc(n=4) == 5
    assert counter.get() == 5  # read your writes on the calling node
    assert await counter.set(10) == 10
    await d.set("a", 1)
    await d.set("b", [1, 2])
    assert await d.pop("a") == 1
    assert d.get("a") is None and d.get("b") == [1, 2]
    await lst.append("x")
    await lst.extend(["y", "z"])
    assert await lst.pop(0) == "x"
    await st.add(3)
    await st.update([1, 2])
    assert await st.discard(2) is True
    assert await q.put("first") and await q.put("second")
    assert await q.get() == "first"
    assert await pq.put(5, "low") and await pq.put(1, "high")
    assert await pq.get() == [1, "high"]
    assert await locks.try_acquire("L") is True
    assert locks.is_acquired("L")
    # a call on the leader and one on the other follower
    lc, *_ = c.objs(leader.id)
    assert await lc.inc() == 11
    other_locks = c.objs(f2)[6]
    assert await other_locks.try_acquire("L") is False  # held by f1
    assert not other_locks.is_acquired("L") and other_locks.is_locked("L")
    assert await locks.release("L") is True
    assert await other_locks.try_acquire("L") is True
    await synced(c)
    for i in c.nodes:
        counter, d, lst, st, q, pq, locks = c.objs(i)
        assert counter.get() == 11
        assert d.items() == [("b", [1, 2])]
        assert lst.raw() == ["y", "z"]
        assert st.raw() == {1, 3}
        assert q.peek() == "second" and len(q) == 1
        assert pq.peek() == [5, "low"]
        assert locks.locks["L"][0] == c.sms[f2].client_id  # type: ignore[attr-defined]


async def test_unencodable_argument_raises_type_error_before_proposing(ocluster: ObjCluster) -> None:
    c = ocluster
    leader = await c.initialize([1, 2, 3])
    d = c.objs(leader.id)[1]
    before = leader.metrics().borrow().last_log_index
    with pytest.raises(TypeError):
        await d.set("k", object())
    with pytest.raises(TypeError):
        await d.set("k", 2**80)  # beyond msgpack's integers
    assert leader.metrics().borrow().last_log_index == before


async def test_exactly_once_when_the_leader_is_killed_mid_call(ocluster: ObjCluster) -> None:
    """The follower's call reaches the leader, commits, and the leader dies before
    answering: the retry (same session serial) on the new leader is not applied again."""
    c = ocluster
    leader = await c.initialize([1, 2, 3])
    old = leader.id
    follower = next(i for i in c.nodes if i != old)
    counter = c.objs(follower)[0]
    await counter.inc()
    await synced(c)
    gated = c.sms[old]
    gated.armed = True  # type: ignore[attr-defined]
    call = asyncio.ensure_future(counter.inc())
    async with asyncio.timeout(WAIT):
        await gated.holding.wait()  # type: ignore[attr-defined]
    if c.transport == "mem":
        c.router.isolate(old)
    stopping = asyncio.ensure_future(c.stop(old))
    assert await call == 2  # retried after WriteOutcomeUnknown, answered from the session table
    await stopping
    await synced(c)
    for i in c.nodes:
        assert c.objs(i)[0].get() == 2


async def test_a_dead_lock_holder_loses_its_lock_after_auto_unlock_time() -> None:
    c = ObjCluster("mem")
    try:
        leader = await c.initialize([1, 2, 3])
        holder, other = [i for i in c.nodes if i != leader.id]
        hl, ol = c.objs(holder)[6], c.objs(other)[6]
        sm_other = c.sms[other]
        assert await hl.try_acquire("job") is True
        ttl_ms = int(hl.auto_unlock_time * 1000)
        # While the holder lives it refreshes the lock: the log clock passes several TTLs
        # and the lock is still its.
        start = sm_other.log_time_ms  # type: ignore[attr-defined]
        await sm_other.wait_until(lambda: sm_other.log_time_ms >= start + 3 * ttl_ms, WAIT)  # type: ignore[attr-defined]
        assert await ol.try_acquire("job") is False
        assert hl.is_acquired("job")
        await c.stop(holder)
        await sm_other.wait_until(lambda: not ol.is_locked("job"), WAIT)  # type: ignore[attr-defined]
        assert await ol.try_acquire("job") is True
        await synced(c)
        assert c.objs(leader.id)[6].locks["job"][0] == sm_other.client_id  # type: ignore[attr-defined]
    finally:
        await c.close()


def test_lock_expiry_follows_the_log_clock_only() -> None:
    """Expiry is a function of the CLOCK entries applied, not of the replica's clock."""
    lm = ReplLockManager(auto_unlock_time=1.0)
    lm.locks["a"] = [7, None]
    lm.repl_on_clock(10_000)  # countdown starts at the first tick after the take
    assert lm.locks["a"] == [7, 11_000]
    lm.repl_on_clock(10_999)
    assert "a" in lm.locks
    lm.repl_on_clock(11_000)
    assert "a" not in lm.locks


class V0(ReplicatedObject):
    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    @replicated
    def add(self, k: int) -> int:
        self.n += k
        return self.n


class V1(V0):
    @replicated(version=1)
    def double(self) -> int:
        self.n *= 2
        return self.n


async def test_versioned_methods_and_an_old_node_stopping_at_upgrade() -> None:
    c = ObjCluster("mem", make=lambda: [V1()])
    c.sm_factory = lambda i: GatedObjects([V1() if i != 3 else V0()])
    try:
        leader = await c.initialize([1, 2, 3])
        obj = c.objs(leader.id)[0]
        await obj.add(3)
        with pytest.raises(VersionError):
            await obj.double()  # not proposed: the cluster still runs version 0
        with pytest.raises(VersionError):
            await c.sms[3].upgrade(1)  # type: ignore[attr-defined]  # node 3's code knows only version 0
        await c.sms[leader.id].upgrade(1)  # type: ignore[attr-defined]
        assert await obj.double() == 6
        m = await c.nodes[3].wait(WAIT).metrics(lambda m: not m.is_running, "old node stops")
        assert "upgrade" in str(m.running_state)
    finally:
        await c.close()


async def test_sync_front_end_from_a_thread_and_callbacks() -> None:
    c = ObjCluster("mem")
    try:
        ready = asyncio.Event()
        leaders: list[int | None] = []
        leader_seen = asyncio.Event()

        def on_leader(leader_id: int | None) -> None:
            leaders.append(leader_id)
            leader_seen.set()

        await c.start_many([1, 2, 3])
        c.sms[2].on_ready(ready.set)  # type: ignore[attr-defined]
        c.sms[2].on_leader_change(on_leader)  # type: ignore[attr-defined]
        leader = await c.initialize([1, 2, 3])
        async with asyncio.timeout(WAIT):
            await ready.wait()
            while leader.id not in leaders:
                leader_seen.clear()
                await leader_seen.wait()
        assert leaders[0] is None  # the first call: no leader known before the election
        proxy = c.sms[2].sync(c.objs(2)[0], timeout=WAIT)  # type: ignore[attr-defined]
        assert await asyncio.to_thread(lambda: proxy.inc(3)) == 3
        assert await asyncio.to_thread(proxy.get) == 3
        with pytest.raises(RuntimeError):
            proxy.get()  # on the loop thread it would wait on itself
    finally:
        await c.close()


async def test_snapshot_and_restart_restore_the_objects(tmp_path: Path) -> None:
    router = MemRouter()
    config = fast_config(max_in_snapshot_log_to_keep=0)

    async def node(objs: list[Any]) -> tuple[Raft, ObjectStateMachine, Any]:
        store = await SegmentedLogStore.open(tmp_path / "log", cluster_name=config.cluster_name, node_id=1)
        sm = await ObjectStateMachine.open(objs, tmp_path / "snap")
        raft = await Raft.new(1, config, MemNetworkFactory(router), store, sm)
        serve_on_router(router, raft)
        sm.bind(raft)
        return raft, sm, store

    objs = batteries()
    raft, sm, store = await node(objs)
    await raft.initialize([1])
    await raft.wait(WAIT).state(ServerState.LEADER, "leader")
    counter, d, lst, st, q, pq, locks = objs
    await counter.inc(7)
    await d.set("k", "v")
    await lst.append(1)
    await st.add("s")
    await q.put("q")
    await pq.put(2, "p")
    assert await locks.try_acquire("held")
    await raft.trigger().snapshot()
    m = await raft.wait(WAIT).metrics(lambda m: m.snapshot is not None and m.snapshot.index >= m.last_applied.index,
                                      "snapshot")
    await raft.trigger().purge_log(m.snapshot.index)
    await raft.wait(WAIT).metrics(lambda m: m.purged is not None and m.purged.index >= m.snapshot.index, "purged")
    await sm.close()
    await raft.shutdown()
    await store.close()

    fresh = batteries()
    raft, sm, store = await node(fresh)
    try:
        counter, d, lst, st, q, pq, locks = fresh
        assert counter.get() == 7  # from the snapshot file: the log no longer has these entries
        assert d.get("k") == "v" and lst.raw() == [1] and st.raw() == {"s"}
        assert q.peek() == "q" and pq.peek() == [2, "p"] and locks.is_locked("held")
        assert not locks.is_acquired("held")  # a new process is a new holder
        await raft.wait(WAIT).state(ServerState.LEADER, "leader again")
        assert await counter.inc() == 8
    finally:
        await sm.close()
        await raft.shutdown()
        await store.close()
        await router.close()


async def test_log_store_suite_with_object_state_machine() -> None:
    async def builder() -> tuple[Any, Any]:
        return MemLogStore(), ObjectStateMachine(batteries())

    report = await run_log_store_suite(builder)
    assert report.passed and not report.failed


def test_bad_entries_answer_an_error_the_same_everywhere() -> None:
    sm = ObjectStateMachine([ReplCounter()])
    for payload in (b"", b"\xc1", b"\x93\x00\x00\x00", b"\x91\x09"):
        out = sm._apply_command(payload)
        assert out is not None and out[:2] == b"\x92\x01"  # [ERROR, message]
    assert sm.objects[0].get() == 0


def test_config_default_unchanged() -> None:
    assert Config().forward_timeout == 5.0


async def test_a_follower_restarted_empty_gets_the_objects_from_a_snapshot() -> None:
    """The leader purged its log behind a snapshot: a follower that lost everything is
    sent the snapshot (§7) and its fresh objects come back from it."""
    c = ObjCluster("mem", config=fast_config(max_in_snapshot_log_to_keep=0))
    try:
        leader = await c.initialize([1, 2, 3])
        lagging = next(i for i in c.nodes if i != leader.id)
        await c.stop(lagging)
        counter, d, *_ = c.objs(leader.id)
        for k in range(5):
            await counter.inc()
            await d.set(f"k{k}", k)
        await leader.trigger().snapshot()
        m = await leader.wait(WAIT).metrics(
            lambda m: m.snapshot is not None and m.snapshot.index >= m.last_applied.index, "snapshot")
        await leader.trigger().purge_log(m.snapshot.index)
        await leader.wait(WAIT).metrics(lambda m: m.purged is not None and m.purged.index >= m.snapshot.index,
                                        "purged")
        raft = await c.start(lagging)  # memory stores: an empty log and fresh objects
        await raft.wait(WAIT).metrics(lambda m: m.snapshot is not None and m.snapshot.index >= m.purged.index
                                      if m.purged is not None else False, "snapshot installed")
        await raft.ensure_linearizable(forward=True)
        counter2, d2, *_ = c.objs(lagging)
        assert counter2.get() == 5 and d2.get("k4") == 4
        assert await counter2.inc() == 6  # and its session/serials work after the install
    finally:
        await c.close()


async def test_background_tasks_end_with_the_node() -> None:
    router = MemRouter()
    locks = ReplLockManager(auto_unlock_time=1.0)
    sm = ObjectStateMachine([locks])
    raft = await Raft.new(1, fast_config(), MemNetworkFactory(router), MemLogStore(), sm)
    serve_on_router(router, raft)
    sm.bind(raft)
    await raft.initialize([1])
    await raft.wait(WAIT).state(ServerState.LEADER, "leader")
    assert await locks.try_acquire("x")  # the clock task is ticking now
    await raft.shutdown()
    done, pending = await asyncio.wait(sm._tasks, timeout=WAIT)
    assert not pending
    await router.close()


async def test_a_snapshot_that_cannot_be_stored_leaves_the_objects_unchanged(tmp_path: Path) -> None:
    """§7: a received snapshot replaces the state only once it is stored durably. The
    objects used to take its state before the write (and keep it when the write failed,
    while the applied log id rolled back)."""
    import shutil

    from raftx.errors import StorageError
    from raftx.objects import ObjectStateMachine, ReplCounter

    src = ObjectStateMachine([ReplCounter(7)])
    snap = await (await src.get_snapshot_builder()).build_snapshot()
    dst = ObjectStateMachine([ReplCounter(1)], tmp_path / "snaps")
    shutil.rmtree(tmp_path / "snaps")  # the store cannot write its temp file any more
    with pytest.raises(StorageError):
        await dst.install_snapshot(snap.meta, snap.snapshot)
    assert dst.objects[0].get() == 1  # type: ignore[attr-defined]
    assert await dst.get_current_snapshot() is None
