"""raftx's protocol engine: Raft as a pure state machine (events in, commands out).

Nothing in this package does I/O, reads a clock, or uses global randomness
(``tests/test_layering.py`` enforces it). The runtime (``raftx.runtime``) owns one
`Engine` per node and loops::

    engine = Engine(node_id, config, random.Random(seed), restored_state)
    run(engine.startup(now_ms))
    while True:
        event = await next_event()          # Tick, a peer message, an I/O completion, an API call
        run(engine.step(event))             # carry out the commands in order

Carrying out commands (`raftx.engine.commands`):

* storage commands (`SaveVote`, `AppendToLog`, `TruncateLog`, `PurgeLog`,
  `InstallSnapshot`) go to storage in emission order; each has an ``io_id``;
  report durability with ``IOFlushed(io_id)`` (covers every smaller io id);
* a command with ``when`` (`Condition`) waits until the flushed io id / applied
  index satisfies it (e.g. a vote response waits for the vote to be durable;
  a follower's AppendEntries success waits for the appended entries);
* `Replicate` names an index range: read the entries from the log store (they are
  readable once submitted) and send them; answer with `AppendResponded` or
  `ReplicationFailed`; `SendVote` -> `VoteResponded`; `SendSnapshot` ->
  `SnapshotResponded`;
* `Apply` the committed range to the state machine, resolve its ``responders``
  with the outputs, then report ``Applied(last)``; `BuildSnapshot` ->
  ``SnapshotBuilt(meta)``;
* `Respond` resolves an API or RPC responder (an exception instance = failure).

Inputs (`raftx.engine.events`): ``Tick(now_ms)`` is the only clock; RPCs from
peers arrive as `VoteRequested` / `AppendRequested` / `SnapshotReceived` /
`TransferLeaderRequested` with an opaque ``responder``; API calls as
`Initialize`, `ClientWrite` (a batch of payloads, one responder each),
`ChangeMembership`, `AddLearner`, `GetReadLogId`, ``Trigger*`` and
`SetRuntimeConfig`.

Entries received from the network need only the small `raftx.messages.LogEntries`
surface (log id by position, term runs, membership entries, slicing), so the
runtime may pass its encoded batch straight through.

Queries for metrics (read-only properties over ``engine.state``, the
`raftx.engine.state.EngineState`, and ``engine.roles``): ``engine.vote``,
``engine.server_state``, ``engine.current_leader``, ``engine.log.last_log_id``,
``engine.committed``, ``engine.applied``, ``engine.snapshot``, ``engine.log.purged``,
``engine.membership.effective`` / ``.committed``, ``engine.leader.progress``.
"""

from raftx.engine.commands import (
    Apply,
    AppendToLog,
    BuildSnapshot,
    Command,
    Condition,
    InstallSnapshot,
    PurgeLog,
    Replicate,
    Respond,
    SaveCommitted,
    SaveVote,
    SendSnapshot,
    SendTransferLeader,
    SendVote,
    TruncateLog,
)
from raftx.engine.engine import Engine, Random, RestoredState
from raftx.engine.events import (
    AddLearner,
    AppendRequested,
    AppendResponded,
    Applied,
    ChangeMembership,
    ClientWrite,
    Event,
    GetReadLogId,
    IOFlushed,
    Initialize,
    ReplicationFailed,
    SetRuntimeConfig,
    SnapshotBuilt,
    SnapshotReceived,
    SnapshotResponded,
    Tick,
    TransferLeaderRequested,
    TriggerElect,
    TriggerHeartbeat,
    TriggerPurgeLog,
    TriggerSnapshot,
    TriggerTransferLeader,
    VoteRequested,
    VoteResponded,
)
from raftx.engine.progress import Progress, ProgressState
from raftx.engine.state import each_responder

__all__ = [
    "AddLearner", "Apply", "AppendRequested", "AppendResponded", "AppendToLog", "Applied",
    "BuildSnapshot", "ChangeMembership", "ClientWrite", "Command", "Condition", "Engine",
    "Event", "GetReadLogId", "IOFlushed", "Initialize", "InstallSnapshot", "Progress",
    "ProgressState", "PurgeLog", "Random", "Replicate", "ReplicationFailed", "Respond",
    "RestoredState", "SaveCommitted", "SaveVote", "SendSnapshot", "SendTransferLeader",
    "SendVote", "SetRuntimeConfig", "SnapshotBuilt", "SnapshotReceived", "SnapshotResponded",
    "Tick", "TransferLeaderRequested", "TriggerElect", "TriggerHeartbeat", "TriggerPurgeLog",
    "TriggerSnapshot", "TriggerTransferLeader", "TruncateLog", "VoteRequested", "VoteResponded",
    "each_responder",
]
