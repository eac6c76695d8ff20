"""The nemesis's faults: each breaks something, holds it, and repairs it.

Every fault is ``async def fault(ctx) -> str`` (its description) and leaves the
cluster whole again when it returns (killed nodes restarted, paused ones resumed,
partitions healed); the runner measures how long the cluster then takes to accept
a write. ``ctx.hold()`` is the random time a fault lasts.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from raftx.testing.nemesis.cluster import NemesisCluster

__all__ = ["FAULTS", "PARTITION_FAULTS", "FaultContext"]


@dataclass
class FaultContext:
    """What a fault acts on."""

    cluster: NemesisCluster
    rng: random.Random
    #: Upper bound of a fault's hold time (seconds); SIGSTOPs hold at most 3 s.
    max_hold: float = 4.0

    def hold(self, cap: float | None = None) -> float:
        hi = self.max_hold if cap is None else min(cap, self.max_hold)
        return self.rng.uniform(min(0.5, hi), hi)

    async def leader_and_follower(self) -> tuple[int, int]:
        ids = sorted(self.cluster.nodes)
        leader = await self.cluster.leader()
        if leader is None:
            leader = self.rng.choice(ids)
        return leader, self.rng.choice([i for i in ids if i != leader])


Fault = Callable[[FaultContext], Awaitable[str]]


def _on(role: str, act: Callable[[FaultContext, list[int], str], Awaitable[str]], what: str) -> Fault:
    """A fault that does ``act`` to the leader, a follower, or both ("two")."""
    async def fault(ctx: FaultContext) -> str:
        leader, follower = await ctx.leader_and_follower()
        ids = {"leader": [leader], "follower": [follower], "two": [leader, follower]}[role]
        names = {"leader": f"leader {leader}", "follower": f"follower {follower}",
                 "two": f"leader {leader} and follower {follower} at once"}[role]
        return await act(ctx, ids, what.format(names))

    return fault


async def _kill_restart(ctx: FaultContext, ids: list[int], what: str) -> str:
    for i in ids:
        ctx.cluster.kill(i)
    held = ctx.hold()
    await asyncio.sleep(held)  # the fault's duration is the point, not a synchronisation
    for i in ids:
        ctx.cluster.restart(i)
    return f"{what}, restarted after {held:.1f}s"


async def kill_during_restart(ctx: FaultContext) -> str:
    _, node = await ctx.leader_and_follower()
    if ctx.rng.random() < 0.5:
        node = await ctx.cluster.leader() or node
    ctx.cluster.kill(node)
    await asyncio.sleep(ctx.hold(1.0))
    ctx.cluster.restart(node)
    again = ctx.rng.uniform(0.05, 0.8)
    await asyncio.sleep(again)  # kill it again while it is still starting / catching up
    ctx.cluster.kill(node)
    held = ctx.hold()
    await asyncio.sleep(held)
    ctx.cluster.restart(node)
    return f"kill -9 node {node}, restart, kill -9 again {again:.2f}s into the restart, restarted after {held:.1f}s"


async def _pause(ctx: FaultContext, ids: list[int], what: str) -> str:
    for i in ids:
        ctx.cluster.pause(i)
    held = ctx.hold(3.0)
    await asyncio.sleep(held)
    for i in ids:
        ctx.cluster.resume(i)
    return f"{what}, SIGCONT after {held:.1f}s"


async def _isolate(ctx: FaultContext, ids: list[int], what: str) -> str:
    net: Any = ctx.cluster.network
    assert net is not None
    for i in ids:
        net.isolate(i)
    held = ctx.hold() + ctx.rng.uniform(0.0, 3.0)  # long enough to lag past a snapshot
    await asyncio.sleep(held)
    for i in ids:
        net.heal(i)
    return f"{what}, healed after {held:.1f}s"


#: Faults that need nothing but processes.
FAULTS: dict[str, Fault] = {
    "kill_leader": _on("leader", _kill_restart, "kill -9 {}"),
    "kill_follower": _on("follower", _kill_restart, "kill -9 {}"),
    "kill_two": _on("two", _kill_restart, "kill -9 {}"),
    "kill_during_restart": kill_during_restart,
    "pause_leader": _on("leader", _pause, "SIGSTOP {}"),
    "pause_follower": _on("follower", _pause, "SIGSTOP {}"),
}

#: Faults that need network namespaces.
PARTITION_FAULTS: dict[str, Fault] = {
    "partition_leader": _on("leader", _isolate, "partition {} from the others"),
    "partition_follower": _on("follower", _isolate, "partition {} from the others"),
}
