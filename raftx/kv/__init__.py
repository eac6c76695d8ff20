"""A replicated key-value service built on raftx (docs/guides/operations.md runs it).

* `KVStateMachine`: the replicated dictionary (a `raftx.storage.RaftStateMachine`)
  with client sessions (each write applied once, Raft §8) and snapshots.
* `KVClient`: the asyncio client (finds the leader, retries safely, batches):
  revisions, ranges, transactions (`Compare`, `Op`), leases, watches (`Event`);
  `RetryPolicy`: how it waits between attempts.
* `Lock` / `Election` (`raftx.kv.concurrency`): recipes on leases and transactions.
* `KVNodeServer` / `KVService`: a node's TCP port serving Raft RPCs and ``kv.*``.
* `raftx.kv.commands` (command bytes, `KVResponse`), `raftx.kv.protocol` (``kv.*``
  payloads), `raftx.kv.server` (``main(argv)``: run one node as a process).
"""

from raftx.kv.client import KVClient, Watch
from raftx.kv.commands import KVResponse
from raftx.kv.keyspace import Event
from raftx.kv.retry import RetryPolicy
from raftx.kv.service import KVNodeServer, KVService
from raftx.kv.state_machine import KVStateMachine
from raftx.kv.txn import Compare, Op

__all__ = ["Compare", "Event", "KVClient", "KVNodeServer", "KVResponse", "KVService", "KVStateMachine", "Op",
           "RetryPolicy", "Watch"]
