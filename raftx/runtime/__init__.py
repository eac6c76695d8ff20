"""raftx's asyncio runtime: the core task that owns the engine and carries out its commands.

* `raftx.runtime.core.RaftCore`: the core loop (events in, engine step, commands out);
* `raftx.runtime.storage_worker`: ordered log/vote writes, durability reported as
  ``IOFlushed``; `raftx.runtime.apply_worker`: the state-machine worker;
* `raftx.runtime.replication`: per-follower sender tasks (pipelined AppendEntries,
  snapshots), votes and leadership transfer;
* `raftx.runtime.watch` (metrics channels), `raftx.runtime.wait` (`Wait`),
  `raftx.runtime.state` (`RaftState`), `raftx.runtime.snapshot_recv` (chunked
  snapshot reassembly), `raftx.runtime.entries` (encoded batches as engine entries).

Applications use `raftx.Raft`; nothing here is needed directly.
"""

from raftx.runtime.core import RaftCore
from raftx.runtime.state import RaftState
from raftx.runtime.wait import Wait
from raftx.runtime.watch import WatchReceiver, WatchSender

__all__ = ["RaftCore", "RaftState", "Wait", "WatchReceiver", "WatchSender"]
