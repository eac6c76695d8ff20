"""The simulated disk of each node: the real `SegmentedLogStore` over a `SimFS`.

Each node's log lives in its own `raftx.testing.simfs.SimFS` (an in-memory file
system behind the `raftx.storage.FileIO` seam, with a page cache and a durable
view), so the production segmented log runs all its code: group commit through
its `raftx.storage.io_thread.IOThread` (inline on the `SimLoop`: no thread),
hard-state files, segment creation and rolling (small segments), truncation,
purge, recovery with torn-tail repair.

* ``sync_in_thread`` (per seed) picks the store's fdatasync path: its I/O rounds, or
  inline on the loop;
* a crash is a power loss (`SimFS.power_loss`): unsynced writes are lost, the
  last one may be torn at sector granularity (per the seed's plan: some unsynced
  writes kept or none, tears on or off);
* with the plan's ``fsync_failure`` rate, fsyncs fail (``EIO``); the store must
  then stop the node (fail-stop, R10), which the simulation expects only there.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from raftx.storage.segmented import SegmentedLogStore

if TYPE_CHECKING:
    from raftx.testing.simulation.runner import Simulation

__all__ = ["SEGMENT_BYTES", "failure_injected", "make_disk", "open_log", "power_loss", "process_crash", "start_faults",
           "stop_faults"]

#: Small segments, so a short run rolls, truncates across and purges whole segments.
SEGMENT_BYTES = 4096

try:  # developer-A's SimFS (issue 12); without it the nodes use MemLogStore
    from raftx.testing.simfs import SimFS
except ImportError:  # pragma: no cover - only before issue 12 is merged
    SimFS = None  # type: ignore[assignment,misc]


class _Disk:
    """One node's file system and what was done to it."""

    def __init__(self, fs: Any) -> None:
        self.fs = fs
        self.fail_armed = False
        self.failures = 0


def make_disk(sim: Simulation, node_id: int) -> _Disk | None:
    if SimFS is None:
        return None
    return _Disk(SimFS(seed=sim.disk_rng.getrandbits(32)))


async def open_log(sim: Simulation, node_id: int, disk: _Disk) -> SegmentedLogStore:
    return await SegmentedLogStore.open(f"/n{node_id}/log", io=disk.fs, node_id=node_id,
                                        segment_bytes=SEGMENT_BYTES, sync_in_thread=sim.plan.sync_in_thread)


def power_loss(sim: Simulation, disk: _Disk | None) -> str:
    """Cut the power: keep some or none of the unsynced writes, maybe tear the last."""
    if disk is None:
        return ""
    plan = sim.plan
    disk.fail_armed = False
    disk.fs.power_loss(kept=None if plan.keep_unsynced else 0, torn="random" if plan.torn_writes else None)
    return "power loss"


def process_crash(sim: Simulation, disk: _Disk | None) -> str:
    """Only the process dies: descriptors closed, nothing written is lost."""
    if disk is None:
        return ""
    disk.fail_armed = False
    disk.fs.crash()
    return "process crash"


def failure_injected(sim: Simulation, disk: _Disk | None) -> bool:
    """True if an fsync failure was injected on ``disk`` (a node stopping is then expected)."""
    return disk is not None and disk.failures > 0


def start_faults(sim: Simulation) -> None:
    """Fail an fsync now and then (the plan's rate per 100 ms per node)."""
    rate = sim.plan.fsync_failure
    if not rate or SimFS is None:
        return
    rng = random.Random(sim.disk_rng.getrandbits(64))
    sim._fsync_faults = True  # type: ignore[attr-defined]

    def tick() -> None:
        if not getattr(sim, "_fsync_faults", False):
            return
        for _, n in sorted(sim.nodes.items()):
            d = n.disk
            if d is not None and n.up and not d.fail_armed and rng.random() < rate:
                d.fail_armed = True
                d.failures += 1
                d.fs.fail_next("fdatasync")
                sim.trace(f"fault fsync failure armed on node {n.id}")
        sim.later(100, tick)

    sim.later(100, tick)


def stop_faults(sim: Simulation) -> None:
    """No more fsync failures (an armed one is disarmed: the liveness phase is healthy)."""
    sim._fsync_faults = False  # type: ignore[attr-defined]
    for _, n in sorted(sim.nodes.items()):
        d = n.disk
        if d is not None and d.fail_armed:
            d.fs.disarm()
            d.fail_armed = False
