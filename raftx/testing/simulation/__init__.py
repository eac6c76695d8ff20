"""Deterministic simulation testing of the raftx engine (correctness-notes §4.6).

One seed fixes a whole run: N `raftx.engine.Engine` instances, each driven by a
`SimNode` against a `SimDisk` (volatile cache, fsync, lost and torn unsynced
writes, fsync failure -> Fatal) and a `SimNetwork` (per-link loss, delay,
duplication, reordering, one-way and two-way partitions), all under one virtual
clock (`Scheduler`). Nodes crash and restart from their durable disk at any step.
`Invariants` checks Raft's safety properties after every step; simulated clients
record a `History` that is checked for linearizability (key-value model) at the
end. Each seed runs a safety phase (random faults and membership changes) then a
liveness phase (faults healed: a leader and commit progress within a bounded
number of election timeouts).

Run one seed::

    from raftx.testing.simulation import run_seed
    result = run_seed(42)
    assert result.ok, result.report()

Replay a seed under pytest: ``pytest tests/simulation --seed 42``. Long sweep:
``python -m raftx.testing.simulation --seeds 0:5000 --jobs 2``.

Determinism: no global ``random``, no wall clock, no iteration over unordered
sets; every run hashes its trace (`SimResult.trace_hash`), and the same seed must
give the same hash.
"""

from raftx.testing.simulation.clients import ClientPool
from raftx.testing.simulation.clock import Scheduler
from raftx.testing.simulation.faults import ACTIONS, FaultInjector, FaultPlan
from raftx.testing.simulation.invariants import InvariantViolation, Invariants
from raftx.testing.simulation.node import SimNode
from raftx.testing.simulation.runner import SimOptions, SimResult, Simulation, engine_config, run_seed
from raftx.testing.simulation.simdisk import DiskState, SimDisk
from raftx.testing.simulation.simnet import LinkFaults, Msg, SimNetwork
from raftx.testing.simulation.statemachine import KVStateMachine, decode_put, encode_put
from raftx.testing.simulation.sweep import SweepSummary, parse_seeds, sweep

__all__ = [
    "ACTIONS", "ClientPool", "DiskState", "FaultInjector", "FaultPlan", "InvariantViolation", "Invariants",
    "KVStateMachine", "LinkFaults", "Msg", "Scheduler", "SimDisk", "SimNetwork", "SimNode", "SimOptions",
    "SimResult", "Simulation", "SweepSummary", "decode_put", "encode_put", "engine_config", "parse_seeds",
    "run_seed", "sweep",
]
