"""`SimLoop` (virtual time, deterministic order, dead lives, no threads) and `SimNetwork`."""

from __future__ import annotations

import asyncio
import contextvars
import random
from typing import Any

import pytest

from raftx.errors import Timeout, Unreachable
from raftx.storage.segmented import SegmentedLogStore
from raftx.testing.simfs import SimFS
from raftx.testing.simulation import LIFE, Life, LinkFaults, SimLoop, SimNetwork
from raftx.testing.simulation.loop import SimulationLivelock
from raftx.types import Entry, LogId


def run(loop: SimLoop, coro: Any) -> Any:
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def life_context(node: int) -> tuple[Life, contextvars.Context]:
    life = Life(node, 0)
    ctx = contextvars.copy_context()
    ctx.run(LIFE.set, life)
    return life, ctx


def test_time_jumps_to_the_next_timer_and_ties_run_in_scheduling_order() -> None:
    loop = SimLoop()
    order: list[tuple[float, str]] = []

    async def main() -> None:
        for name in ("a", "b", "c", "d"):  # all due at the same instant
            loop.call_at(5.0, lambda n=name: order.append((loop.time(), n)))
        loop.call_at(2.0, lambda: order.append((loop.time(), "early")))
        await asyncio.sleep(3600)  # an hour of virtual time, no wall-clock wait

    run(loop, main())
    assert order == [(2.0, "early"), (5.0, "a"), (5.0, "b"), (5.0, "c"), (5.0, "d")]


def test_a_dead_life_never_runs_again_and_to_thread_runs_inline() -> None:
    loop = SimLoop()
    steps: list[str] = []
    life, ctx = life_context(1)

    async def node() -> None:
        try:
            while True:
                await asyncio.sleep(1)
                steps.append("tick")
        finally:
            steps.append("finally ran")  # a killed process runs no finally block

    async def main() -> int:
        loop.create_task(node(), context=ctx)
        await asyncio.sleep(2.5)
        life.alive = False
        await asyncio.sleep(10)
        assert steps == ["tick", "tick"]  # (closing the loop at the end closes its coroutine)
        return await asyncio.to_thread(lambda: 42)

    assert run(loop, main()) == 42


def test_no_real_io_and_busy_loops_are_reported() -> None:
    loop = SimLoop()
    with pytest.raises(NotImplementedError):
        loop.add_reader(0, lambda: None)

    async def spin() -> None:
        while True:
            await asyncio.sleep(0)  # never lets virtual time move

    with pytest.raises(SimulationLivelock):
        run(loop, spin())


def test_the_segmented_store_runs_inline_on_the_loop_and_loses_unsynced_writes() -> None:
    """IOThread inline mode: no thread; an append is durable only after its round."""
    loop = SimLoop(random.Random(1), io_delay=(0.01, 0.01))
    fs = SimFS(seed=3)
    durable: list[float] = []

    async def main() -> None:
        store = await SegmentedLogStore.open("/n1/log", io=fs, node_id=1, segment_bytes=4096)
        assert store._iot is not None and store._iot._inline is not None
        start = loop.time()
        await store.append([Entry(LogId(1, 0), b"x")], lambda err: durable.append(loop.time() - start))
        assert durable == []  # written, not yet synced
        await asyncio.sleep(0.05)
        assert len(durable) == 1 and durable[0] >= 0.01  # after (at least) one simulated I/O round
        await store.append([Entry(LogId(1, 1), b"y")], lambda err: durable.append(-1))
        fs.power_loss(kept=0)  # before the second round

    run(loop, main())
    loop2 = SimLoop()

    async def reopen() -> LogId | None:
        store = await SegmentedLogStore.open("/n1/log", io=fs, node_id=1, segment_bytes=4096)
        return (await store.get_log_state()).last_log_id

    assert run(loop2, reopen()) == LogId(1, 0)


def _serve(net: SimNetwork, node: int, ctx: contextvars.Context, seen: list[Any]) -> None:
    async def handler(src: int, method: str, payload: memoryview) -> bytes:
        seen.append((src, method, bytes(payload), LIFE.get()))
        return b"re:" + bytes(payload)

    net.serve(node, handler, ctx)


def test_network_serves_in_the_target_life_keeps_link_order_and_fails_like_a_network() -> None:
    loop = SimLoop()
    net = SimNetwork(loop, random.Random(7), LinkFaults(min_delay=1, max_delay=20))
    life2, ctx2 = life_context(2)
    seen: list[Any] = []
    _serve(net, 2, ctx2, seen)

    async def main() -> None:
        answers = await asyncio.gather(*(net.call(1, 2, "m", bytes([i]), 1.0) for i in range(20)))
        assert answers == [b"re:" + bytes([i]) for i in range(20)]
        assert [s[2] for s in seen] == [bytes([i]) for i in range(20)]  # in order on one link
        assert all(s[3] is life2 for s in seen)  # served in the target's life
        net.block(1, 2)
        with pytest.raises(Unreachable):
            await net.call(1, 2, "m", b"", 1.0)
        net.heal()
        life2.alive = False  # the target crashed: nobody answers
        net.down(2)
        with pytest.raises(Timeout):
            await net.call(1, 2, "m", b"", 0.5)

    run(loop, main())


def test_a_node_on_an_exact_millisecond_clock_does_not_spin() -> None:
    """RaftCore.now_ms on a clock that lands exactly on its timers: the tick set for
    ``due / 1000`` s must see ``due`` ms (``int(1.003 * 1000)`` is 1002), or it re-arms
    for the same instant forever (found by the simulation: `SimulationLivelock`)."""
    from raftx import Config, Raft
    from raftx.network import MemRouter
    from raftx.network.raft_rpc import MemNetworkFactory
    from raftx.storage import MemLogStore, MemStateMachine

    loop = SimLoop()

    async def main() -> None:
        raft = await Raft.new(1, Config(), MemNetworkFactory(MemRouter(), 1), MemLogStore(), MemStateMachine(),
                              rng=random.Random(1))
        await raft.initialize([1])
        await asyncio.sleep(30)  # 30 virtual seconds of heartbeats and election timers
        assert raft._core.engine.is_leader
        await raft.shutdown()

    run(loop, main())


def test_each_life_runs_its_own_clock_and_the_world_runs_on_real_time() -> None:
    """Clock drift: a node's `time`, sleeps and timers are on its clock (``offset + rate *
    real``); `call_real_later` (network, disk) is on the real virtual clock."""
    loop = SimLoop()
    fast, slow = Life(1, 0, rate=1.05, offset=500.0), Life(2, 0, rate=0.95)
    seen: dict[str, tuple[float, float]] = {}

    def context(life: Life) -> contextvars.Context:
        ctx = contextvars.copy_context()
        ctx.run(LIFE.set, life)
        return ctx

    async def node(name: str) -> None:
        start = loop.time()
        await asyncio.sleep(1.0)  # one second of this node's clock
        seen[name] = (loop.time() - start, loop.real_time())

    def world() -> None:
        seen["wire"] = (loop.time(), loop.real_time())

    async def main() -> None:
        loop.create_task(node("fast"), context=context(fast))
        loop.create_task(node("slow"), context=context(slow))
        context(fast).run(loop.call_real_later, 2.0, world)  # scheduled by a drifting node, in real time
        assert loop.time() == loop.real_time() == 0.0  # no life: the real clock
        assert context(fast).run(loop.time) == 500.0
        await asyncio.sleep(3)

    run(loop, main())
    assert seen["fast"][0] == pytest.approx(1.0) and seen["fast"][1] == pytest.approx(1 / 1.05)
    assert seen["slow"][0] == pytest.approx(1.0) and seen["slow"][1] == pytest.approx(1 / 0.95)
    assert seen["wire"] == (pytest.approx(500 + 2 * 1.05), 2.0)  # runs in the caller's life, at real 2 s
    with pytest.raises(ValueError):
        Life(3, 0, rate=0.0)
