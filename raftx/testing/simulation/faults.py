"""Which faults a seed injects (`FaultPlan`) and the injector that injects them.

`FaultPlan.random` draws, from the seed, the network knobs (loss, delay,
reordering), which fault *actions* are enabled, the disk behaviour (fsync
failures, torn and partially kept unsynced writes at a power loss), and engine
options (pre-vote, leader lease, snapshots), and how far the nodes' clocks may
drift (``clock_drift``: each node's clock runs at a seeded rate within
``1 ± clock_drift`` of real time, never beyond the 5% `raftx.engine.reads` assumes
for lease reads). During the safety phase `FaultInjector`
performs one enabled action every few hundred virtual milliseconds:

========================  ==============================================================
``partition``             split the nodes in two groups (both directions)
``one_way``               block one direction of one link (asymmetric partition)
``isolate_leader``        cut the current leader off from everyone
``slow_link``             make one link slow and lossy
``heal``                  unblock everything, default knobs everywhere
``crash``                 crash a node (restart later)
``crash_mid_step``        crash a node within the next few ms (between any two callbacks)
``restart``               restart a crashed node
``kill``                  kill a node's process (kill -9: its disk keeps every write)
``shutdown``              an operator restart: graceful `Raft.shutdown`, then boot
``add_learner``           leader adds a non-member as learner (thesis §4.3)
``promote``               leader makes a learner a voter (joint consensus)
``remove_voter``          leader removes a voter (kept as learner or dropped)
``transfer_leader``       leader hands over to another voter (thesis §3.10)
``snapshot``              a node builds a snapshot now (§7)
========================  ==============================================================
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from raftx.types import BasicNode, ChangeMembers

if TYPE_CHECKING:
    from raftx.engine import Engine
    from raftx.testing.simulation.node import SimNode
    from raftx.testing.simulation.runner import Simulation

__all__ = ["ACTIONS", "FaultInjector", "FaultPlan"]

ACTIONS = (
    "partition", "one_way", "isolate_leader", "slow_link", "heal", "crash", "crash_mid_step", "restart",
    "add_learner", "promote", "remove_voter", "transfer_leader", "snapshot", "kill", "shutdown",
)


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """The faults of one seed; see the module docstring."""

    drop: float = 0.0
    max_delay: int = 3
    reorder: float = 0.0
    actions: tuple[str, ...] = ()
    interval: tuple[int, int] = (40, 300)
    fsync_failure: float = 0.0
    keep_unsynced: bool = True
    torn_writes: bool = True
    pre_vote: bool = False
    leader_lease: bool = True
    snapshot_every: int = 0
    sync_in_thread: bool = True
    clock_drift: float = 0.0

    @classmethod
    def random(cls, rng: random.Random) -> FaultPlan:
        """A plan drawn from ``rng``: each action enabled with probability 1/2."""
        actions = tuple(a for a in ACTIONS if rng.random() < 0.5)
        if "heal" not in actions and any(a in actions for a in ("partition", "one_way", "isolate_leader")):
            actions += ("heal",)
        if "crash" in actions or "crash_mid_step" in actions or "kill" in actions:
            actions += ("restart",) if "restart" not in actions else ()
        return cls(
            drop=rng.choice((0.0, 0.0, 0.01, 0.05, 0.15)),
            max_delay=rng.choice((2, 5, 15, 30)),
            reorder=rng.choice((0.0, 0.05, 0.2)),
            actions=actions,
            interval=rng.choice(((30, 150), (80, 400))),
            fsync_failure=rng.choice((0.0, 0.0, 0.0, 0.003)),
            keep_unsynced=rng.random() < 0.7,
            torn_writes=rng.random() < 0.7,
            pre_vote=rng.random() < 0.5,
            leader_lease=rng.random() < 0.5,
            snapshot_every=rng.choice((0, 25, 25)),
            sync_in_thread=rng.random() < 0.7,
            clock_drift=rng.choice((0.0, 0.01, 0.05, 0.05)),  # the bound of raftx.engine.reads
        )

    def describe(self) -> str:
        return (f"drop={self.drop} delay<={self.max_delay} reorder={self.reorder} "
                f"fsync_fail={self.fsync_failure} keep_unsynced={self.keep_unsynced} torn={self.torn_writes} "
                f"pre_vote={self.pre_vote} lease={self.leader_lease} snapshot_every={self.snapshot_every} "
                f"sync_in_thread={self.sync_in_thread} drift={self.clock_drift} "
                f"actions={','.join(self.actions) or '-'}")


class FaultInjector:
    """Performs the plan's actions at random times until `stop`."""

    def __init__(self, sim: Simulation, plan: FaultPlan, rng: random.Random) -> None:
        self.sim = sim
        self.plan = plan
        self.rng = rng
        self.active = False
        self.done: dict[str, int] = {}

    def start(self) -> None:
        self.active = bool(self.plan.actions)
        if self.active:
            self._schedule()

    def stop(self) -> None:
        self.active = False

    def _schedule(self) -> None:
        self.sim.later(self.rng.randint(*self.plan.interval), self._fire)

    def _fire(self) -> None:
        if not self.active:
            return
        action = self.rng.choice(self.plan.actions)
        did = getattr(self, "_" + action)()
        if did:
            self.done[action] = self.done.get(action, 0) + 1
            self.sim.trace(f"fault {action}: {did}")
        self._schedule()

    # -- helpers ------------------------------------------------------------------------

    def _ids(self) -> list[int]:
        return sorted(self.sim.nodes)

    def _up(self) -> list[SimNode]:
        return [n for _, n in sorted(self.sim.nodes.items()) if n.up]

    def _random_up(self) -> SimNode | None:
        up = self._up()
        return self.rng.choice(up) if up else None

    def _leader(self) -> tuple[SimNode, Engine] | None:
        n = self.sim.leader()
        return None if n is None or n.engine is None else (n, n.engine)

    # -- network --------------------------------------------------------------------------

    def _partition(self) -> str:
        ids = self._ids()
        self.rng.shuffle(ids)
        k = self.rng.randint(1, len(ids) - 1)
        a, b = sorted(ids[:k]), sorted(ids[k:])
        self.sim.net.partition(a, b)
        return f"{a} | {b}"

    def _one_way(self) -> str:
        src, dst = self.rng.sample(self._ids(), 2)
        self.sim.net.block(src, dst)
        return f"{src} -> {dst} blocked"

    def _isolate_leader(self) -> str | None:
        found = self._leader()
        if found is None:
            return None
        self.sim.net.isolate(found[0].id, self._ids())
        return f"leader {found[0].id}"

    def _slow_link(self) -> str:
        src, dst = self.rng.sample(self._ids(), 2)
        self.sim.net.set_link(src, dst, min_delay=20, max_delay=self.rng.randint(40, 200), drop=0.3)
        return f"{src} -> {dst} slow"

    def _heal(self) -> str:
        self.sim.net.heal()
        self.sim.net.default = self.sim.default_link
        return "all links"

    # -- nodes -----------------------------------------------------------------------------

    def _crash(self) -> str | None:
        n = self._random_up()
        if n is None:
            return None
        n.crash("fault")
        return f"node {n.id}"

    def _crash_mid_step(self) -> str | None:
        n = self._random_up()
        if n is None:
            return None
        life = n.life
        delay = self.rng.uniform(0, 3)

        def crash() -> None:
            if n.life is life:
                n.crash("fault mid-step")

        self.sim.later(delay, crash)
        return f"node {n.id} in {delay:.3f} ms"

    def _kill(self) -> str | None:
        n = self._random_up()
        if n is None:
            return None
        n.crash("kill -9", power_loss=False)
        return f"node {n.id}"

    def _shutdown(self) -> str | None:
        n = self._random_up()
        if n is None:
            return None
        n.shutdown()
        return f"node {n.id}"

    def _restart(self) -> str | None:
        down = [n for _, n in sorted(self.sim.nodes.items()) if n.down and n.id not in self.sim.retired]
        if not down:
            return None
        n = self.rng.choice(down)
        n.restart()
        return f"node {n.id}"

    def _snapshot(self) -> str | None:
        n = self._random_up()
        if n is None or n.raft is None:
            return None
        n.call(f"snapshot {n.id}", n.raft.trigger().snapshot())
        return f"node {n.id}"

    # -- membership (through the leader, thesis §4.3) ----------------------------------------

    def _add_learner(self) -> str | None:
        found = self._leader()
        if found is None:
            return None
        leader, eng = found
        m = eng.membership.effective.membership
        outside = [i for i in self._ids() if i not in m.nodes]
        if not outside:
            return None
        node_id = self.rng.choice(outside)
        self.sim.retired.discard(node_id)
        self.sim.nodes[node_id].restart()
        what = f"add learner {node_id}"
        assert leader.raft is not None
        leader.call(what, leader.raft.add_learner(node_id, BasicNode(f"n{node_id}"), blocking=False))
        return what

    def _promote(self) -> str | None:
        found = self._leader()
        if found is None:
            return None
        leader, eng = found
        learners = sorted(eng.membership.effective.membership.learner_ids())
        if not learners:
            return None
        node_id = self.rng.choice(learners)
        what = f"promote {node_id}"
        assert leader.raft is not None
        leader.call(what, leader.raft.change_membership(ChangeMembers.AddVoterIds([node_id]), retain=True))
        return what

    def _remove_voter(self) -> str | None:
        found = self._leader()
        if found is None:
            return None
        leader, eng = found
        voters = sorted(eng.membership.effective.membership.voter_ids())
        if len(voters) < 3:
            return None
        node_id = self.rng.choice(voters)
        retain = self.rng.random() < 0.5
        what = f"remove voter {node_id} retain={retain}"
        assert leader.raft is not None
        leader.call(what, leader.raft.change_membership(ChangeMembers.RemoveVoters([node_id]), retain=retain))
        return what

    def _transfer_leader(self) -> str | None:
        found = self._leader()
        if found is None:
            return None
        leader, eng = found
        others = sorted(eng.membership.effective.membership.voter_ids() - {leader.id})
        if not others:
            return None
        to = self.rng.choice(others)
        assert leader.raft is not None
        leader.call(f"transfer {leader.id} -> {to}", leader.raft.trigger().transfer_leader(to))
        return f"{leader.id} -> {to}"
