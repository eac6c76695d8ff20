"""One seeded simulation run: wiring, the safety phase, the liveness phase, the verdict.

`run_seed` builds a `Simulation` and runs it. Every node is the production
runtime (`raftx.Raft`, `raftx.runtime.RaftCore` and its workers) over the
production log store and state machine, all on one deterministic virtual-time
`SimLoop`; the network and the disk are simulated (`raftx.testing.simulation.node`):

1. **set-up**: ``nodes`` nodes boot on empty disks; node 1 initializes the cluster
   with the first ``initial_voters`` as voters (the others may join as learners);
2. **safety phase** (``safety_ms`` virtual ms): clients write and read while the
   `FaultInjector` injects the seed's faults; the invariants are checked after the
   work of every instant of virtual time (before the clock moves on);
3. **liveness phase**: faults stop, links heal, crashed nodes restart (a node no
   longer in the membership is shut down, as an operator would). Within
   ``liveness_timeouts`` election timeouts there must be a leader that committed an
   entry of its own term and applied a fresh write (TigerBeetle's liveness mode);
4. **verdict**: full Log Matching over every log, every acknowledged write in the
   final leader, and the client history linearizable for the key-value model.

Everything random comes from ``random.Random`` objects seeded from the seed; the
trace (one line per step) is hashed, so a rerun must give the same `SimResult.trace_hash`.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
import random
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Coroutine

from raftx.config import Config, SnapshotPolicy
from raftx.errors import ConfigError, Fatal
from raftx.testing.linearizability import KV, Verdict
from raftx.testing.simulation import disk as simdisk
from raftx.testing.simulation.clients import ClientPool
from raftx.testing.simulation.faults import FaultInjector, FaultPlan
from raftx.testing.simulation.invariants import InvariantViolation, Invariants
from raftx.testing.simulation.loop import SimLoop
from raftx.testing.simulation.node import SimNode
from raftx.testing.simulation.simnet import LinkFaults, SimNetwork
from raftx.testing.simulation.statemachine import encode_put
from raftx.types import BasicNode, Entry, LogId, Membership

__all__ = ["SimOptions", "SimResult", "Simulation", "run_seed"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SimOptions:
    """The shape of a run (the seed decides the faults unless ``plan`` is given)."""

    nodes: int = 5
    initial_voters: int = 3
    safety_ms: int = 5000
    liveness_timeouts: int = 10
    clients: int = 3
    keys: int = 3
    check_budget: int = 2_000_000
    trace_tail: int = 40
    plan: FaultPlan | None = None

    def validate(self) -> SimOptions:
        if not 1 <= self.initial_voters <= self.nodes:
            raise ConfigError(f"need 1 <= initial_voters ({self.initial_voters}) <= nodes ({self.nodes})")
        for name in ("safety_ms", "liveness_timeouts", "clients", "keys", "check_budget", "trace_tail"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"SimOptions.{name} must be an int >= 0, not {v!r}")
        return self


@dataclass
class SimResult:
    """The outcome of one seed."""

    seed: int
    plan: FaultPlan
    trace_hash: str = ""
    steps: int = 0
    virtual_ms: int = 0
    violation: str | None = None
    detail: str = ""
    verdict: str = ""
    operations: int = 0
    acked: int = 0
    unknown: int = 0
    #: Completed linearizable reads, and how many of them asked for ``ReadPolicy.LEASE_READ``.
    reads: int = 0
    lease_reads: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    tail: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.violation is None

    def report(self) -> str:
        """What a failing seed prints: the seed, the invariant, the trace tail, the replay."""
        head = (f"seed {self.seed}: {'ok' if self.ok else 'VIOLATION ' + str(self.violation)} "
                f"({self.steps} steps, {self.virtual_ms} ms virtual, {self.operations} ops, "
                f"{self.acked} acked, {self.unknown} unknown, linearizability {self.verdict or '-'}; "
                f"trace {self.trace_hash[:16]})")
        if self.ok:
            return head
        lines = [head, f"  faults: {self.plan.describe()}", f"  detail: {self.detail}", "  trace tail:"]
        lines += [f"    {t}" for t in self.tail]
        lines.append(f"  replay: pytest tests/simulation --seed {self.seed}")
        return "\n".join(lines)


def engine_config(plan: FaultPlan) -> Config:
    """Small timeouts, windows and snapshot chunks, so a short run exercises elections,
    flow control and chunked snapshot transfer."""
    snapshot = SnapshotPolicy.LogsSinceLast(plan.snapshot_every) if plan.snapshot_every else SnapshotPolicy.Never()
    return Config(
        election_timeout_min=150, election_timeout_max=300, heartbeat_interval=50,
        max_payload_entries=8, max_inflight_appends=3, replication_lag_threshold=60,
        snapshot_policy=snapshot, max_in_snapshot_log_to_keep=5, purge_batch_size=1,
        snapshot_max_chunk_size=128,  # snapshots travel in several chunks
        enable_pre_vote=plan.pre_vote, enable_leader_lease=plan.leader_lease,
    ).validate()


class Simulation:
    """N production nodes, a network, disks, clients and faults on one `SimLoop`."""

    tick_ms = 10

    def __init__(self, seed: int, options: SimOptions | None = None) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"seed must be an int >= 0, not {seed!r}")
        self.seed = seed
        self.options = (options or SimOptions()).validate()
        master = random.Random(seed)
        streams = [random.Random(master.getrandbits(64)) for _ in range(8)]
        self.rng, net_rng, self.disk_rng, client_rng, fault_rng, plan_rng, io_rng, self.clock_rng = streams
        self.plan = self.options.plan or FaultPlan.random(plan_rng)
        drift = self.plan.clock_drift
        if isinstance(drift, bool) or not isinstance(drift, (int, float)) or not 0 <= drift < 1:
            raise ConfigError(f"FaultPlan.clock_drift must be a number in [0, 1), not {drift!r}")
        self.config = engine_config(self.plan)
        self.loop = SimLoop(io_rng)
        self.loop.on_advance = self._on_advance
        self._root = contextvars.Context()
        self._tasks: list[asyncio.Task[Any]] = []
        self._hash = hashlib.sha256()
        self._tail: deque[str] = deque(maxlen=self.options.trace_tail)
        self._state_line = ""
        self._violation: InvariantViolation | None = None
        self.steps = 0
        self.invariants = Invariants()
        self.default_link = LinkFaults(drop=self.plan.drop, min_delay=0.5, max_delay=self.plan.max_delay,
                                       reorder=self.plan.reorder)
        self.net = SimNetwork(self.loop, net_rng, self.default_link)
        self.nodes: dict[int, SimNode] = {}
        for i in range(1, self.options.nodes + 1):
            self.nodes[i] = SimNode(self, i, self.config, self._clock_rate(drift))
        #: Nodes shut down for good (removed from the cluster).
        self.retired: set[int] = set()
        self.clients = ClientPool(self, client_rng, self.options.clients, self.options.keys)
        self.injector = FaultInjector(self, self.plan, fault_rng)
        self.probe_acked = False
        self.initialized = False
        self._initializing = False

    # -- services for the parts ---------------------------------------------------------

    def _clock_rate(self, drift: float) -> float:
        """A node's clock rate within ``1 ± drift``; often at the very bound (the worst case)."""
        if not drift:
            return 1.0
        u = self.clock_rng.uniform(-1.0, 1.0)
        return 1.0 + drift * self.clock_rng.choice((-1.0, 1.0, u))

    def new_clock_offset(self) -> float:
        """Where a freshly booted machine's monotonic clock starts (seconds)."""
        return self.clock_rng.uniform(0.0, 1000.0)

    def now_ms(self) -> int:
        """Virtual time in whole microseconds (history timestamps)... in ms for traces."""
        return round(self.loop.real_time() * 1_000_000)

    def trace(self, line: str) -> None:
        """Record one trace line (hashed; the last few kept for a report)."""
        text = f"{self.loop.real_time() * 1000:.3f} {line}"
        self._hash.update(text.encode())
        self._hash.update(b"\n")
        self._tail.append(text)

    def later(self, ms: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` in ``ms`` virtual milliseconds, outside every node's life."""
        self.loop.call_real_later(ms / 1000, fn, context=self._root)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` as a task outside every node's life (clients, API calls)."""
        self._tasks.append(self.loop.create_task(coro, context=self._root.copy()))
        if len(self._tasks) > 256:
            self._tasks = [t for t in self._tasks if not t.done()]

    def fail(self, invariant: str, detail: str) -> None:
        """Record a finding made inside a task; the run stops at the next instant."""
        if self._violation is None:
            self._violation = InvariantViolation(invariant, detail)

    def make_disk(self, node_id: int) -> Any:
        return simdisk.make_disk(self, node_id)

    async def open_log(self, node_id: int, disk: Any) -> Any:
        return await simdisk.open_log(self, node_id, disk)

    def power_loss(self, disk: Any) -> str:
        return simdisk.power_loss(self, disk)

    def process_crash(self, disk: Any) -> str:
        return simdisk.process_crash(self, disk)

    def on_write_acked(self, log_id: LogId, payload: bytes) -> None:
        self.invariants.on_ack(log_id.index, log_id, payload)

    def leader(self) -> SimNode | None:
        """The live leader of the highest term, if any."""
        best: SimNode | None = None
        for _, n in sorted(self.nodes.items()):
            e = n.engine
            if n.up and e is not None and e.is_leader and (best is None or e.vote.term > best.engine.vote.term):  # type: ignore[union-attr]
                best = n
        return best

    # -- after every instant ----------------------------------------------------------------

    def _on_advance(self) -> None:
        """All the work of one instant is done: check every node, hash the state."""
        self.steps += 1
        if self._violation is not None:
            raise self._violation
        leaders = [(n.id, n.engine) for _, n in sorted(self.nodes.items())
                   if n.up and n.engine is not None and n.engine.is_leader]
        parts = []
        for i, n in sorted(self.nodes.items()):
            if n.raft is None:
                continue
            if n.shutting_down:
                continue
            cause = n.fatal_cause()
            if cause is not None:
                self._stopped(n, cause)
                continue
            eng = n.engine
            assert eng is not None
            self.invariants.after_step(i, eng, leaders)
            parts.append(f"{i}:{eng.vote.term}{'L' if eng.is_leader else ''}/{eng.log.last_index}/"
                         f"{-1 if eng.committed is None else eng.committed.index}")
        line = " ".join(parts)
        if line != self._state_line:
            self._state_line = line
            self.trace(line)

    def _stopped(self, n: SimNode, cause: Fatal) -> None:
        """The runtime stopped itself: fine after an injected fsync failure, else a finding."""
        if simdisk.failure_injected(self, n.disk):
            n.crash(f"Fatal after an injected fsync failure: {cause}")
            return
        root = cause.__cause__ or cause.__context__
        raise InvariantViolation("node stopped", f"node {n.id} stopped by itself: {cause!r} (cause {root!r})")

    # -- running --------------------------------------------------------------------------

    def run(self) -> SimResult:
        """Run both phases and the final checks; never raises for a finding."""
        res = SimResult(self.seed, self.plan)
        try:
            self.loop.run_until_complete(self._main(res))
            if self._violation is not None:
                raise self._violation
        except InvariantViolation as exc:
            res.violation, res.detail = exc.invariant, exc.detail
        except Exception as exc:  # an assertion or crash in the runtime is a finding too
            res.violation = f"exception {type(exc).__name__}"
            res.detail = f"{exc}\n{traceback.format_exc(limit=8)}"
        finally:
            self._close()
        res.steps, res.virtual_ms = self.steps, round(self.loop.real_time() * 1000)
        res.trace_hash = self._hash.hexdigest()
        res.tail = list(self._tail)
        res.faults = dict(sorted(self.injector.done.items()))
        res.operations = len(self.clients.history)
        res.acked, res.unknown = self.clients.acked, self.clients.unknown
        res.reads, res.lease_reads = self.clients.reads, self.clients.lease_reads
        if not res.ok:
            logger.warning("%s", res.report())
        return res

    def _close(self) -> None:
        for n in self.nodes.values():
            if n.life is not None:
                n.life.alive = False
        self._tasks.clear()
        loop = self.loop
        if loop.is_running():  # pragma: no cover - run_until_complete returned or raised
            return
        loop.on_advance = None
        loop.close()

    async def _main(self, res: SimResult) -> None:
        self._setup()
        await asyncio.sleep(self.options.safety_ms / 1000)
        await self._liveness()
        await self._final(res)

    def _setup(self) -> None:
        self.trace(f"seed {self.seed} plan {self.plan.describe()}")
        self.trace("clock rates " + " ".join(f"{i}:{n.clock_rate:.4f}" for i, n in sorted(self.nodes.items())))
        for _, n in sorted(self.nodes.items()):
            n.boot()
        self.later(1, self._initialize)
        self.clients.start()
        self.injector.start()
        simdisk.start_faults(self)

    def _initialize(self) -> None:
        """Node 1 initializes the cluster; like an operator, retry until it is durable
        (a crash before the first fsync loses the initial membership entry)."""
        if self.initialized:
            return
        first = self.nodes[1]
        eng = first.engine
        if first.up and eng is not None and first.raft is not None:
            if eng.vote.term == 0 and eng.log.last_index < 0:
                voters = {i: BasicNode(f"n{i}") for i in range(1, self.options.initial_voters + 1)}
                first.call("initialize", first.raft.initialize(Membership.new(voters)))
            else:
                self.initialized = True  # its initial entry is there: it is not pristine any more
                return
        self.later(2 * self.config.election_timeout_max, self._initialize)

    async def _liveness(self) -> None:
        """Heal everything; require a leader with progress within a bounded time."""
        self.injector.stop()
        simdisk.stop_faults(self)
        self.net.heal()
        self.net.default = LinkFaults(min_delay=0.5, max_delay=3)
        self.trace("liveness phase")
        for _, n in sorted(self.nodes.items()):
            if n.down and n.id not in self.retired:
                n.restart()
        loop = self.loop
        limit = loop.real_time() + self.options.liveness_timeouts * self.config.election_timeout_max / 1000
        probe_due = 0.0
        while loop.real_time() < limit:
            await asyncio.sleep(self.tick_ms / 1000)
            self._retire_removed()
            for _, n in sorted(self.nodes.items()):
                if n.down and n.id not in self.retired:
                    n.restart()  # e.g. stopped by an fsync failure armed before the heal
            leader = self.leader()
            if leader is None or leader.engine is None or leader.engine.leader is None:
                continue
            eng = leader.engine
            state = eng.leader
            assert state is not None
            if eng.committed is None or eng.committed < state.noop_log_id:
                continue
            if self.probe_acked:
                self.clients.stop()
                await asyncio.sleep(2 * self.clients.op_timeout / 1000)
                return
            if loop.real_time() >= probe_due:  # (re)send a probe write
                probe_due = loop.real_time() + self.clients.op_timeout / 1000
                self._probe(leader)
        raise InvariantViolation(
            "liveness",
            f"no leader with commit progress and an applied write within {self.options.liveness_timeouts} "
            f"election timeouts after healing; nodes: "
            + "; ".join(f"{i}:{'up' if n.up else 'booting' if n.booting else 'down'} {n.engine!r}"
                        for i, n in sorted(self.nodes.items())))

    def _probe(self, leader: SimNode) -> None:
        h = self.clients.history
        value = f"probe.{leader.id}.{self.now_ms()}"
        payload = encode_put("k0", value)
        op = h.invoke("probe", ("put", "k0", value), time=self.now_ms())
        raft = leader.raft
        assert raft is not None

        async def write() -> None:
            try:
                async with asyncio.timeout(self.clients.op_timeout / 1000):
                    resp = await raft.client_write(payload)
            except Exception as exc:  # noqa: BLE001 - outcome unknown: left open
                self.trace(f"probe {value} -> {type(exc).__name__}")
                return
            h.complete(op, None, time=self.now_ms())
            self.on_write_acked(resp.log_id, payload)
            self.probe_acked = True

        self.trace(f"probe write {value} via {leader.id}")
        self.spawn(write())

    def _retire_removed(self) -> None:
        """Shut down nodes the leader's committed membership no longer lists."""
        leader = self.leader()
        if leader is None or leader.engine is None:
            return
        ms = leader.engine.membership
        if not ms.is_effective_committed():
            return
        members = ms.effective.membership.nodes
        for i, n in sorted(self.nodes.items()):
            if i not in members and i not in self.retired:
                self.retired.add(i)
                n.crash("retired: not a member")

    async def _final(self, res: SimResult) -> None:
        leader = self.leader()
        logs: dict[int, list[Entry]] = {}
        for i, n in sorted(self.nodes.items()):
            eng = n.engine
            if not n.up or n.store is None or eng is None:
                continue
            reader = await n.store.get_log_reader()
            logs[i] = list(await reader.try_get_log_entries(eng.log.purged_index + 1, eng.log.last_index + 1))
        self.invariants.check_final(logs, None if leader is None else leader.id,
                                    None if leader is None else leader.engine)
        result = self.clients.history.check(KV, budget=self.options.check_budget)
        res.verdict = result.verdict.value
        if result.verdict is Verdict.ILLEGAL:
            raise InvariantViolation("linearizability", result.describe())
        if result.verdict is Verdict.UNKNOWN:
            raise InvariantViolation("linearizability unknown",
                                     f"checker budget of {self.options.check_budget} steps exhausted")


def run_seed(seed: int, options: SimOptions | None = None) -> SimResult:
    """Run one seed; see the module docstring."""
    return Simulation(seed, options).run()
