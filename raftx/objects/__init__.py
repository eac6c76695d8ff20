"""Replicated objects over `raftx.Raft` (PySyncObj's programming model, asyncio first).

* `replicated`: the method decorator (``@replicated`` or ``@replicated(version=N)``);
  `ReplicatedObject`: the base class (`raftx.objects.base`).
* `ObjectStateMachine`: the node's state machine holding the objects; ``sm.bind(raft)``
  replicates their calls through that node, forwarded to the leader, exactly once
  (`raftx.objects.machine`); snapshots, sessions, versioning and log time included;
  ``on_ready`` / ``on_leader_change`` callbacks; ``sm.sync(obj)`` a blocking front
  end for threads (`raftx.objects.front`).
* Batteries: `ReplCounter`, `ReplDict`, `ReplList`, `ReplSet`, `ReplQueue`,
  `ReplPriorityQueue` (`raftx.objects.batteries`) and `ReplLockManager` with
  log-time expiry (`raftx.objects.locks`).

Example::

    from raftx.objects import ObjectStateMachine, ReplCounter

    counter = ReplCounter()
    sm = ObjectStateMachine([counter])
    raft = await Raft.new(1, config, network, MemLogStore(), sm)
    sm.bind(raft)
    await counter.inc(2)        # on any node
    counter.get()               # local applied state
"""

from raftx.objects.base import ReplicatedObject, replicated
from raftx.objects.batteries import ReplCounter, ReplDict, ReplList, ReplPriorityQueue, ReplQueue, ReplSet
from raftx.objects.front import SyncProxy
from raftx.objects.locks import ReplLockManager
from raftx.objects.machine import ObjectStateMachine, ReplicatedCallError, VersionError

__all__ = [
    "ObjectStateMachine",
    "ReplCounter",
    "ReplDict",
    "ReplList",
    "ReplLockManager",
    "ReplPriorityQueue",
    "ReplQueue",
    "ReplSet",
    "ReplicatedCallError",
    "ReplicatedObject",
    "SyncProxy",
    "VersionError",
    "replicated",
]
