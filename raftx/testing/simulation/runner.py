"""One seeded simulation run: wiring, the safety phase, the liveness phase, the verdict.

`run_seed` builds a `Simulation` and runs it:

1. **set-up**: ``nodes`` nodes boot on empty disks; node 1 initializes the cluster
   with the first ``initial_voters`` as voters (the others may join as learners);
2. **safety phase** (``safety_ms`` virtual ms): clients write and read while the
   `FaultInjector` injects the seed's faults; every step is checked;
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

import hashlib
import logging
import random
import traceback
from collections import deque
from dataclasses import dataclass, field

from raftx.config import Config, SnapshotPolicy
from raftx.engine import events as ev
from raftx.errors import ConfigError
from raftx.testing.linearizability import KV, Verdict
from raftx.testing.simulation.clients import ClientPool
from raftx.testing.simulation.clock import Scheduler
from raftx.testing.simulation.faults import FaultInjector, FaultPlan
from raftx.testing.simulation.invariants import InvariantViolation, Invariants
from raftx.testing.simulation.node import ClientResponder, SimNode
from raftx.testing.simulation.simdisk import SimDisk
from raftx.testing.simulation.simnet import LinkFaults, Msg, SimNetwork
from raftx.types import BasicNode, Entry, Membership

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
    """Small timeouts and windows, so a short run exercises elections and flow control."""
    snapshot = SnapshotPolicy.LogsSinceLast(plan.snapshot_every) if plan.snapshot_every else SnapshotPolicy.Never()
    return Config(
        election_timeout_min=150, election_timeout_max=300, heartbeat_interval=50,
        max_payload_entries=8, max_inflight_appends=3, replication_lag_threshold=60,
        snapshot_policy=snapshot, max_in_snapshot_log_to_keep=5, purge_batch_size=1,
        enable_pre_vote=plan.pre_vote, enable_leader_lease=plan.leader_lease,
    ).validate()


class Simulation:
    """N nodes, a network, disks, clients and faults under one virtual clock."""

    tick_ms = 10
    fsync_delay = (1, 6)
    rpc_timeout = 150

    def __init__(self, seed: int, options: SimOptions | None = None) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"seed must be an int >= 0, not {seed!r}")
        self.seed = seed
        self.options = (options or SimOptions()).validate()
        master = random.Random(seed)
        streams = [random.Random(master.getrandbits(64)) for _ in range(6)]
        self.rng, net_rng, disk_rng, client_rng, fault_rng, plan_rng = streams
        self.plan = self.options.plan or FaultPlan.random(plan_rng)
        self.config = engine_config(self.plan)
        self.scheduler = Scheduler()
        self._hash = hashlib.sha256()
        self._tail: deque[str] = deque(maxlen=self.options.trace_tail)
        self.invariants = Invariants()
        default = LinkFaults(drop=self.plan.drop, min_delay=1, max_delay=self.plan.max_delay,
                             duplicate=self.plan.duplicate, reorder=self.plan.reorder)
        self.net = SimNetwork(self.scheduler, net_rng, self._deliver, default)
        self.nodes: dict[int, SimNode] = {}
        for i in range(1, self.options.nodes + 1):
            disk = SimDisk(random.Random(disk_rng.getrandbits(64)), self.plan.fsync_failure,
                           self.plan.keep_unsynced, self.plan.torn_writes)
            self.nodes[i] = SimNode(self, i, self.config, disk)
        #: Nodes shut down for good (removed from the cluster).
        self.retired: set[int] = set()
        self.clients = ClientPool(self, client_rng, self.options.clients, self.options.keys)
        self.injector = FaultInjector(self, self.plan, fault_rng)
        self._rid = 0
        self.probe_acked = False
        self.initialized = False

    # -- services for the parts ---------------------------------------------------------

    def trace(self, line: str) -> None:
        """Record one trace line (hashed; the last few kept for a report)."""
        text = f"{self.scheduler.now} {line}"
        self._hash.update(text.encode())
        self._hash.update(b"\n")
        self._tail.append(text)

    def next_rid(self) -> int:
        self._rid += 1
        return self._rid

    def _deliver(self, m: Msg) -> None:
        node = self.nodes.get(m.dst)
        if node is not None:
            node.receive(m)

    def after_step(self, node: SimNode) -> None:
        assert node.engine is not None
        leaders = [(n.id, n.engine) for _, n in sorted(self.nodes.items())
                   if n.up and n.engine is not None and n.engine.is_leader]
        self.invariants.after_step(node.id, node.engine, leaders)

    def on_write_acked(self, entry: Entry) -> None:
        self.invariants.on_ack(entry.log_id.index, entry.log_id, entry.payload)

    def leader(self) -> SimNode | None:
        """The live leader of the highest term, if any."""
        best: SimNode | None = None
        for _, n in sorted(self.nodes.items()):
            e = n.engine
            if n.up and e is not None and e.is_leader and (best is None or e.vote.term > best.engine.vote.term):  # type: ignore[union-attr]
                best = n
        return best

    # -- running --------------------------------------------------------------------------

    def run_until(self, t: int) -> None:
        s = self.scheduler
        while True:
            nxt = s.next_time()
            if nxt is None or nxt > t:
                break
            s.run_next()
        s.now = max(s.now, t)

    def run(self) -> SimResult:
        """Run both phases and the final checks; never raises for a finding."""
        res = SimResult(self.seed, self.plan)
        try:
            self._setup()
            self.run_until(self.options.safety_ms)
            self._liveness()
            self._final(res)
        except InvariantViolation as exc:
            res.violation, res.detail = exc.invariant, exc.detail
        except Exception as exc:  # an engine assertion or crash is a finding too
            res.violation = f"exception {type(exc).__name__}"
            res.detail = f"{exc}\n{traceback.format_exc(limit=8)}"
        res.steps, res.virtual_ms = self.scheduler.steps, self.scheduler.now
        res.trace_hash = self._hash.hexdigest()
        res.tail = list(self._tail)
        res.faults = dict(sorted(self.injector.done.items()))
        res.operations = len(self.clients.history)
        res.acked, res.unknown = self.clients.acked, self.clients.unknown
        if not res.ok:
            logger.warning("%s", res.report())
        return res

    def _setup(self) -> None:
        self.trace(f"seed {self.seed} plan {self.plan.describe()}")
        for _, n in sorted(self.nodes.items()):
            n.boot()
        self._initialize()
        self.clients.start()
        self.injector.start()

    def _initialize(self) -> None:
        """Node 1 initializes the cluster; like an operator, retry until it is durable
        (a crash before the first fsync loses the initial membership entry)."""
        if self.initialized:
            return
        first = self.nodes[1]
        eng = first.engine
        if first.up and eng is not None and eng.vote.term == 0 and eng.log.last_index < 0:
            voters = {i: BasicNode(f"n{i}") for i in range(1, self.options.initial_voters + 1)}

            def answered(v: object) -> None:
                self.trace(f"initialize -> {v!r}")
                if v is None:
                    self.initialized = True

            first.call(ev.Initialize(Membership.new(voters), ClientResponder(answered)))
        elif first.up and eng is not None:
            self.initialized = True  # its initial entry survived: it is not pristine any more
        self.scheduler.after(4 * self.config.election_timeout_max, self._initialize)

    def _liveness(self) -> None:
        """Heal everything; require a leader with progress within a bounded time."""
        self.injector.stop()
        self.net.heal()
        self.net.default = LinkFaults(min_delay=1, max_delay=3)
        self.trace("liveness phase")
        for _, n in sorted(self.nodes.items()):
            n.disk.fsync_failure = 0.0
            n.crash_after = None
            if not n.up and n.id not in self.retired:
                n.restart()
        limit = self.scheduler.now + self.options.liveness_timeouts * self.config.election_timeout_max
        probe_due = 0
        while self.scheduler.now < limit:
            self.run_until(self.scheduler.now + self.tick_ms)
            self._retire_removed()
            leader = self.leader()
            if leader is None or leader.engine is None or leader.engine.leader is None:
                continue
            eng = leader.engine
            state = leader.engine.leader
            if eng.committed is None or eng.committed < state.noop_log_id:
                continue
            if self.probe_acked:
                self.clients.stop()
                self.run_until(self.scheduler.now + 2 * self.clients.op_timeout)
                return
            if self.scheduler.now >= probe_due:  # (re)send a probe write
                probe_due = self.scheduler.now + self.clients.op_timeout
                self._probe(leader)
        raise InvariantViolation(
            "liveness",
            f"no leader with commit progress and an applied write within {self.options.liveness_timeouts} "
            f"election timeouts after healing; nodes: "
            + "; ".join(f"{i}:{'up' if n.up else 'down'} {n.engine!r}" for i, n in sorted(self.nodes.items())))

    def _probe(self, leader: SimNode) -> None:
        from raftx.testing.simulation.statemachine import encode_put
        from raftx.types import ClientWriteResponse

        h = self.clients.history
        value = f"probe.{leader.id}.{self.scheduler.now}"
        op = h.invoke("probe", ("put", "k0", value), time=self.scheduler.now)

        def answered(v: object) -> None:
            if isinstance(v, ClientWriteResponse):
                h.complete(op, None, time=self.scheduler.now)
                self.probe_acked = True
            else:
                self.trace(f"probe {value} -> {type(v).__name__}")  # outcome unknown: left open

        self.trace(f"probe write {value} via {leader.id}")
        leader.call(ev.ClientWrite([encode_put("k0", value)], [ClientResponder(answered)]))

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
                if n.up:
                    n.crash("retired: not a member")

    def _final(self, res: SimResult) -> None:
        leader = self.leader()
        logs = {i: list(n.disk.cache.entries) for i, n in sorted(self.nodes.items()) if n.up}
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
