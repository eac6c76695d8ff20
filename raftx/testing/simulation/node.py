"""One simulated node: the production `raftx.Raft` over simulated disk and network.

A `SimNode` holds what survives a crash — its disk (the log store's durable view)
and its snapshot store — and, while it is up, one *life*: a `raftx.Raft` opened
with the real `raftx.runtime.RaftCore`, storage and apply workers, log cache,
replicators and snapshot receiver, the real log store over the disk, the real
`raftx.kv.KVStateMachine`, and a `SimNetworkFactory`. Nothing here carries out the
engine's commands: the runtime does, exactly as in production.

* `boot` opens the stores and starts the `Raft` in a fresh `contextvars.Context`
  carrying a new `Life` (so every task and timer the node creates belongs to it),
  then serves its RPCs on the `SimNetwork`;
* the node's clock (`Life`'s ``rate`` and ``offset``) is its hardware's: the rate
  is fixed for the run, the monotonic clock goes on across a process restart
  (``kill``, ``shutdown``) and starts anew, at a seeded offset, after a power loss
  (a reboot);
* `crash` kills the life (its tasks and timers never run again, nothing is shut
  down cleanly), takes it off the network, and cuts the power of its disk: what
  was not durable is lost (`raftx.testing.simfs.SimFS` semantics). `restart` boots
  again from what the disk kept;
* a node whose runtime stopped by itself (``Fatal``) is *stopped*: expected only
  after an injected fsync failure; any other cause is a finding (`fatal_cause`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
from typing import TYPE_CHECKING, Any

from raftx.config import Config
from raftx.engine import Engine
from raftx.errors import Fatal
from raftx.network.raft_rpc import RaftRpcHandler
from raftx.raft import Raft
from raftx.storage.mem import MemLogStore
from raftx.storage.protocols import RaftLogStorage
from raftx.storage.snapshot import MemSnapshotStore
from raftx.testing.simulation.invariants import InvariantViolation
from raftx.testing.simulation.loop import LIFE, Life
from raftx.testing.simulation.simnet import SimNetworkFactory
from raftx.testing.simulation.statemachine import SimKVStateMachine
from raftx.types import Entry, LogId, Vote

if TYPE_CHECKING:
    from raftx.testing.simulation.runner import Simulation

__all__ = ["SimNode"]

logger = logging.getLogger(__name__)


class SimNode:
    """One simulated raftx node; see the module docstring."""

    def __init__(self, sim: Simulation, node_id: int, config: Config, clock_rate: float = 1.0) -> None:
        self.sim = sim
        self.id = node_id
        self.config = config
        #: How fast this node's clock runs (real virtual seconds -> its seconds).
        self.clock_rate = clock_rate
        #: Its clock's reading at real virtual time 0 (redrawn at every reboot).
        self.clock_offset = sim.new_clock_offset()
        self.incarnation = 0
        self.life: Life | None = None
        self.context: contextvars.Context | None = None
        self.raft: Raft | None = None
        self.sm: SimKVStateMachine | None = None
        self.store: RaftLogStorage | None = None
        #: What survives a crash: the snapshot store and the log's disk.
        self.snapshots = MemSnapshotStore()
        self.disk = sim.make_disk(node_id)
        self._mem_log: MemLogStore | None = None
        self.booting = False
        #: A graceful `shutdown` is in progress (the runtime stopping is expected).
        self.shutting_down = False
        #: The durable vote when the node last crashed (checked at the next boot).
        self.last_flushed_vote: Vote | None = None
        #: The last log id its runtime had reported flushed when it last crashed.
        self.last_flushed_log_id: LogId | None = None

    # -- state ----------------------------------------------------------------------

    @property
    def up(self) -> bool:
        """Running (booted and not crashed, not stopped)."""
        return self.raft is not None and self.raft._core.stopped is None and self.raft._core._stop_task is None

    @property
    def engine(self) -> Engine | None:
        """The engine inside the node's running `RaftCore` (read only!)."""
        return None if self.raft is None else self.raft._core.engine

    def fatal_cause(self) -> Fatal | None:
        """The `Fatal` that stopped the runtime by itself, if it did."""
        if self.raft is None:
            return None
        core = self.raft._core
        if core.stopped is not None:
            return core.stopped
        return None if core._stop_task is None else Fatal("stopping")

    def snapshot_index(self) -> int:
        cur = self.snapshots.current
        return -1 if cur is None or cur[0].last_log_id is None else cur[0].last_log_id.index

    # -- life cycle ---------------------------------------------------------------------

    def boot(self) -> None:
        """Start a new life: open the stores and the `Raft` (asynchronously, on the loop)."""
        if self.life is not None:
            return
        life = Life(self.id, self.incarnation, self.clock_rate, self.clock_offset)
        ctx = contextvars.copy_context()
        ctx.run(LIFE.set, life)
        self.life, self.context = life, ctx
        self.booting = True
        self.sim.trace(f"boot {self.id} inc={self.incarnation}")
        self.sim.loop.create_task(self._open(life), context=ctx)

    async def _open(self, life: Life) -> None:
        sim = self.sim
        try:
            store = await self._open_store()
            sm = SimKVStateMachine(self.snapshots, self._observe_apply)
            seed = (sim.seed * 1_000_003 + self.id * 7919 + self.incarnation) & 0xFFFFFFFF
            factory = SimNetworkFactory(sim.net, self.id, random.Random(seed ^ 0x5EED))
            raft = await Raft.new(self.id, self.config, factory, store, sm, rng=random.Random(seed))
        except Exception as exc:  # a store that does not reopen after a crash is a finding
            if life.alive:
                sim.fail("restart", f"node {self.id} cannot restart: {exc!r}")
            return
        if not life.alive:
            return
        self.store, self.sm, self.raft = store, sm, raft
        self.booting = False
        assert self.context is not None
        sim.net.serve(self.id, RaftRpcHandler(raft), self.context)
        eng = raft._core.engine
        try:
            sim.invariants.on_start(self.id, eng, self.last_flushed_vote, self.snapshot_index(),
                                    self.last_flushed_log_id)
        except InvariantViolation as exc:
            sim.fail(exc.invariant, exc.detail)
        sim.trace(f"up {self.id} inc={self.incarnation} {eng!r}")

    async def _open_store(self) -> RaftLogStorage:
        if self.disk is None:  # no simulated file system: an in-memory log (all writes durable)
            if self._mem_log is None:
                self._mem_log = MemLogStore()
            return self._mem_log
        store: RaftLogStorage = await self.sim.open_log(self.id, self.disk)
        return store

    def crash(self, why: str, power_loss: bool = True) -> None:
        """Kill the life and cut the disk's power (see the module docstring); with
        ``power_loss=False`` only the process dies (kill -9: the page cache survives)."""
        life = self.life
        if life is None:
            return
        eng = self.engine
        if eng is not None:
            self.last_flushed_vote = eng.io.flushed_vote
            # What the disk must keep: the flushed log, cut to the lowest point a write
            # still in flight (a truncate) may legitimately leave it at.
            promised = eng.io.flushed_log_id
            for _, _, lid in eng.io._pending:
                if promised is None:
                    break
                if lid is None or lid.index < promised.index:
                    promised = lid
            self.last_flushed_log_id = promised
        life.alive = False
        self.life = self.context = None
        self.raft = self.sm = self.store = None
        self.booting = False
        self.incarnation += 1
        self.sim.net.down(self.id)
        self.shutting_down = False
        note = self.sim.power_loss(self.disk) if power_loss else self.sim.process_crash(self.disk)
        if power_loss:  # a reboot: the monotonic clock starts again somewhere else
            self.clock_offset = self.sim.new_clock_offset()
        self.sim.invariants.forget(self.id)
        self.sim.trace(f"crash {self.id} ({why}{'; ' + note if note else ''})")

    def shutdown(self) -> None:
        """An operator's restart: `Raft.shutdown`, close the log store, boot again."""
        raft, store, life = self.raft, self.store, self.life
        if raft is None or store is None or life is None or self.context is None or self.shutting_down:
            return
        self.shutting_down = True

        async def run() -> None:
            await raft.shutdown()
            await store.close()
            if self.life is life:
                self.crash("graceful shutdown", power_loss=False)
                self.boot()

        self.sim.loop.create_task(run(), context=self.context)

    def restart(self) -> None:
        """Boot again after a crash (no-op while alive)."""
        if self.life is None:
            self.boot()

    @property
    def down(self) -> bool:
        """Crashed (no life) — as opposed to booting or up."""
        return self.life is None

    # -- observation -----------------------------------------------------------------------

    def _observe_apply(self, entries: list[Entry]) -> None:
        eng = self.engine
        if eng is None or self.life is None or LIFE.get() is not self.life:
            return
        sim = self.sim
        try:
            for e in entries:
                sim.invariants.on_apply(self.id, eng, e)
                sim.clients.on_apply(self.id, self.life, e.payload)
        except InvariantViolation as exc:  # raised inside the apply worker: report, do not crash it
            sim.fail(exc.invariant, exc.detail)

    def call(self, what: str, coro: Any) -> None:
        """Run an API call ``coro`` of this node as a background task; trace its outcome."""
        sim = self.sim

        async def run() -> None:
            try:
                async with asyncio.timeout(2 * self.config.election_timeout_max / 1000):
                    result = await coro
            except Exception as exc:  # noqa: BLE001 - every outcome is just traced
                sim.trace(f"{what} -> {type(exc).__name__}")
            else:
                sim.trace(f"{what} -> {type(result).__name__}")

        sim.spawn(run())
