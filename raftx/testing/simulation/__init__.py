"""Deterministic simulation testing of raftx: the production runtime on a virtual clock.

One seed fixes a whole run: N nodes, each the production `raftx.Raft` (its
`raftx.runtime.RaftCore`, storage and apply workers, log cache, replicators,
snapshot receiver), the production `SegmentedLogStore` over an in-memory
power-loss file system (`raftx.testing.simfs.SimFS`) and the production
`raftx.kv.KVStateMachine`, all on ONE deterministic virtual-time asyncio loop
(`SimLoop`), talking through the production RPC codec over a `SimNetwork`
(per-link loss, delay, reordering, one-way and two-way partitions). Nodes crash
(their tasks never run again, their disk loses power) and restart from what the
disk kept. `Invariants` checks Raft's safety properties after the work of every
instant; simulated clients record a `History` that is checked for
linearizability (key-value model) at the end. Each seed runs a safety phase
(random faults and membership changes) then a liveness phase (faults healed: a
leader and commit progress within a bounded number of election timeouts).

Run one seed::

    from raftx.testing.simulation import run_seed
    result = run_seed(42)
    assert result.ok, result.report()

Replay a seed under pytest: ``pytest tests/simulation --seed 42``. Long sweep:
``python -m raftx.testing.simulation --seeds 0:5000 --jobs 2``.

Determinism: no global ``random``, no wall clock, no threads, no iteration over
unordered sets; every run hashes its trace (`SimResult.trace_hash`), and the same
seed must give the same hash.
"""

from raftx.testing.simulation.clients import ClientPool
from raftx.testing.simulation.faults import ACTIONS, FaultInjector, FaultPlan
from raftx.testing.simulation.invariants import InvariantViolation, Invariants
from raftx.testing.simulation.loop import LIFE, Life, SimLoop, SimulationIdle
from raftx.testing.simulation.node import SimNode
from raftx.testing.simulation.runner import SimOptions, SimResult, Simulation, engine_config, run_seed
from raftx.testing.simulation.simnet import LinkFaults, SimNetwork, SimNetworkFactory
from raftx.testing.simulation.statemachine import SimKVStateMachine, encode_put
from raftx.testing.simulation.sweep import SweepSummary, parse_seeds, sweep

__all__ = [
    "ACTIONS", "ClientPool", "FaultInjector", "FaultPlan", "InvariantViolation", "Invariants", "LIFE", "Life",
    "LinkFaults", "SimKVStateMachine", "SimLoop", "SimNetwork", "SimNetworkFactory", "SimNode", "SimOptions",
    "SimResult", "SimulationIdle", "Simulation", "SweepSummary", "encode_put", "engine_config", "parse_seeds",
    "run_seed", "sweep",
]
