"""A replicated key-value service built on raftx (DESIGN §1; API.md "Key-value service").

* `KVStateMachine`: the replicated dictionary (a `raftx.storage.RaftStateMachine`)
  with client sessions (each write applied once, Raft §8) and snapshots.
* `raftx.kv.commands`: the command bytes (msgpack) and `KVResponse`.
"""

from raftx.kv.commands import KVResponse
from raftx.kv.state_machine import KVStateMachine

__all__ = ["KVResponse", "KVStateMachine"]
